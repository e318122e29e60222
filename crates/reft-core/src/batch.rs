//! A batch as the engine consumes it: flat row-major token ids with shapes, optional attention
//! mask, per-intervention positions in pyreft's `unit_locations` layout and labels.

use crate::error::{ReftError, Result};

/// Label value that excludes a token from the loss (HF / pyreft convention).
pub const IGNORE_INDEX: i64 = -100;

/// Inputs of one forward pass.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// `[batch_size * seq_len]` token ids.
    pub input_ids: Vec<u32>,
    pub batch_size: usize,
    pub seq_len: usize,
    /// `[batch_size * seq_len]`, 1 = real token; `None` = all ones.
    pub attention_mask: Option<Vec<u8>>,
    /// `[num_interventions][batch_size][num_positions]`, flattened.
    pub positions: Option<Vec<i64>>,
    pub num_positions: usize,
    /// `[batch_size * seq_len]`, unshifted; `IGNORE_INDEX` for tokens without loss.
    pub labels: Option<Vec<i64>>,
    /// `[batch_size * seq_len]` segment ids for encoders (`token_type_ids`); `None` = zeros.
    pub token_type_ids: Option<Vec<u32>>,
    /// `[batch_size]` targets of a classification (class ids) or regression head.
    pub class_labels: Option<Vec<f32>>,
}

impl Batch {
    /// pyreft's last-position supervised batch: `(full_ids, prompt_len)` per example, right
    /// padded with `pad_id`, labels on the completion only, one intervention at the last prompt
    /// token (`make_last_position_supervised_data_module`, without its tokenizer).
    pub fn last_position_supervised(rows: &[(Vec<u32>, usize)], pad_id: u32) -> Self {
        let t = rows.iter().map(|(f, _)| f.len()).max().unwrap_or(1).max(1);
        let (mut ids, mut mask, mut labels, mut pos) = (vec![], vec![], vec![], vec![]);
        for (full, plen) in rows {
            for i in 0..t {
                let real = i < full.len();
                ids.push(if real { full[i] } else { pad_id });
                mask.push(real as u8);
                labels.push(if real && i >= *plen { full[i] as i64 } else { IGNORE_INDEX });
            }
            pos.push(plen.saturating_sub(1) as i64);
        }
        Batch {
            input_ids: ids,
            batch_size: rows.len(),
            seq_len: t,
            attention_mask: Some(mask),
            positions: Some(pos),
            num_positions: 1,
            labels: Some(labels),
            ..Default::default()
        }
    }

    /// Checks the flat arrays against the declared shapes.
    pub fn validate(&self, num_interventions: usize, vocab: usize) -> Result<()> {
        let n = self.batch_size * self.seq_len;
        if self.batch_size == 0 || self.seq_len == 0 {
            return Err(ReftError::shape("batch", "batch_size ≥ 1 and seq_len ≥ 1", format!("{}×{}", self.batch_size, self.seq_len)));
        }
        if self.input_ids.len() != n {
            return Err(ReftError::shape("input_ids", format!("{n} ids ({}×{})", self.batch_size, self.seq_len), self.input_ids.len().to_string()));
        }
        if let Some(&bad) = self.input_ids.iter().find(|&&t| t as usize >= vocab) {
            return Err(ReftError::range("token id", bad as i64, format!("0..{vocab}")));
        }
        if let Some(m) = &self.attention_mask {
            if m.len() != n {
                return Err(ReftError::shape("attention_mask", n.to_string(), m.len().to_string()));
            }
        }
        if let Some(tt) = &self.token_type_ids {
            if tt.len() != n {
                return Err(ReftError::shape("token_type_ids", n.to_string(), tt.len().to_string()));
            }
        }
        if let Some(c) = &self.class_labels {
            if c.len() != self.batch_size {
                return Err(ReftError::shape("class_labels", format!("{} (one per example)", self.batch_size), c.len().to_string()));
            }
        }
        if let Some(l) = &self.labels {
            if l.len() != n {
                return Err(ReftError::shape("labels", n.to_string(), l.len().to_string()));
            }
            if let Some(&bad) = l.iter().find(|&&t| t != IGNORE_INDEX && (t < 0 || t as usize >= vocab)) {
                return Err(ReftError::range("label", bad, format!("-100 or 0..{vocab}")));
            }
        }
        match &self.positions {
            Some(p) => {
                let want = num_interventions * self.batch_size * self.num_positions;
                if p.len() != want || self.num_positions == 0 {
                    return Err(ReftError::shape(
                        "positions",
                        format!("[{num_interventions} interventions][{} examples][num_positions ≥ 1] = {want}", self.batch_size),
                        format!("{} values with num_positions {}", p.len(), self.num_positions),
                    ));
                }
                if let Some(&bad) = p.iter().find(|&&x| x < 0 || x as usize >= self.seq_len) {
                    return Err(ReftError::range("position", bad, format!("0..{}", self.seq_len)));
                }
            }
            None if num_interventions > 0 => {
                return Err(ReftError::config("positions", "required when the model has interventions"))
            }
            None => {}
        }
        Ok(())
    }

    pub fn mask(&self) -> Vec<u8> {
        self.attention_mask.clone().unwrap_or_else(|| vec![1; self.batch_size * self.seq_len])
    }

    /// Flat row indices (`example * seq_len + position`) for intervention `i`, de-duplicated per
    /// example: pyreft scatters duplicates with the same value, so one write is equivalent.
    pub fn rows(&self, i: usize) -> Vec<u32> {
        let Some(p) = &self.positions else { return vec![] };
        let mut rows = Vec::new();
        for e in 0..self.batch_size {
            let start = (i * self.batch_size + e) * self.num_positions;
            let mut seen: Vec<i64> = Vec::with_capacity(self.num_positions);
            for &pos in &p[start..start + self.num_positions] {
                if !seen.contains(&pos) {
                    seen.push(pos);
                    rows.push((e * self.seq_len) as u32 + pos as u32);
                }
            }
        }
        rows
    }
}
