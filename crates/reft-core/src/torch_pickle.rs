//! PyTorch `torch.save` files read from bytes: a zip of `<archive>/data.pkl` (the pickled
//! state dict) and one raw file per tensor storage (`<archive>/data/<key>`).
//!
//! candle's `pickle::read_all` opens such a file by path; pyreft adapters must also load where
//! there is no file system (WebAssembly in a browser, `files.rs`), so this reads the same format
//! from memory with candle's pickle interpreter (`pickle::Stack`) and the `zip` crate it uses.
//! Tensors stored contiguously, in either C or Fortran order, are read (pyreft saves nothing
//! else); any other layout is refused with `ERR_FORMAT` rather than read wrong.

use crate::error::{ReftError, Result};
use candle_core::pickle::{Object, Stack};
use candle_core::{Device, Tensor};
use std::io::{Cursor, Read};
use std::path::Path;

/// The tensors of the state dict in `bytes` (a `torch.save` zip), by name, on the CPU in their
/// saved dtype. `path` names the file in errors.
pub fn read_state_dict(bytes: &[u8], path: &Path) -> Result<Vec<(String, Tensor)>> {
    let bad = |e: &dyn std::fmt::Display| ReftError::format(path, format!("unreadable PyTorch pickle: {e}"));
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(&e))?;
    let names = zip.file_names().map(|f| f.map(|f| f.into_owned())).collect::<std::result::Result<Vec<String>, _>>().map_err(|e| bad(&e))?;
    let pkl = names.into_iter().find(|f| f.ends_with("data.pkl")).ok_or_else(|| bad(&"no data.pkl in the archive"))?;
    let dir = pkl.strip_suffix(".pkl").unwrap_or(&pkl).to_string();
    let mut stack = Stack::empty();
    {
        let mut pickled = Vec::new();
        zip.by_name(&pkl).map_err(|e| bad(&e))?.read_to_end(&mut pickled).map_err(|e| bad(&e))?;
        stack.read_loop(&mut Cursor::new(pickled)).map_err(|e| bad(&e))?;
    }
    let entries = match unwrap_module(stack.finalize().map_err(|e| bad(&e))?) {
        Object::Dict(entries) => entries,
        other => return Err(bad(&format!("expected a state dict, found {}", kind(&other)))),
    };
    let mut tensors = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        // Entries that are not tensors (pyvene stores none, but a state dict may) are skipped,
        // as candle's reader does.
        let Some(info) = value.into_tensor_info(name, Path::new(&dir)).map_err(|e| bad(&e))? else { continue };
        let mut data = Vec::new();
        zip.by_name(&info.path).map_err(|e| bad(&format!("{}: {e}", info.path)))?.read_to_end(&mut data).map_err(|e| bad(&e))?;
        let layout = &info.layout;
        let dims = layout.dims().to_vec();
        let fortran = dims.len() > 1 && !layout.is_contiguous() && layout.is_fortran_contiguous();
        if !layout.is_contiguous() && !fortran {
            return Err(bad(&format!("`{}` is stored with strides {:?}; only contiguous tensors are read", info.name, layout.stride())));
        }
        // candle's `into_tensor_info` gives the storage offset in bytes already.
        let start = layout.start_offset();
        let len = layout.shape().elem_count() * info.dtype.size_in_bytes();
        let raw = data.get(start..start + len).ok_or_else(|| bad(&format!("`{}`: its storage holds {} bytes, the tensor needs {} from byte {start}", info.name, data.len(), len)))?;
        let tensor = if fortran {
            // Column-major: the reversed shape read row-major, then its axes reversed.
            let reversed: Vec<usize> = dims.iter().rev().copied().collect();
            let axes: Vec<usize> = (0..dims.len()).rev().collect();
            Tensor::from_raw_buffer(raw, info.dtype, &reversed, &Device::Cpu)?.permute(axes)?.contiguous()?
        } else {
            Tensor::from_raw_buffer(raw, info.dtype, &dims, &Device::Cpu)?
        };
        tensors.push((info.name, tensor));
    }
    Ok(tensors)
}

/// A TorchScript-style `__torch__.Module` wrapper's state, or the object itself.
fn unwrap_module(obj: Object) -> Object {
    if let Object::Build { callable, args } = obj {
        if let Object::Reduce { callable: inner, .. } = &*callable {
            if matches!(&**inner, Object::Class { module_name, class_name } if module_name == "__torch__" && class_name == "Module") {
                return *args;
            }
        }
        return Object::Build { callable, args };
    }
    obj
}

/// What an unexpected top-level object is, for the error.
fn kind(obj: &Object) -> &'static str {
    match obj {
        Object::Dict(_) => "a dict",
        Object::List(_) => "a list",
        Object::Tuple(_) => "a tuple",
        Object::Build { .. } | Object::Reduce { .. } => "an object",
        _ => "a value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch").join(name)).unwrap()
    }

    /// `scripts/make_torch_layouts.py` writes the files (its docstring gives the values).
    #[test]
    fn reads_row_major_column_major_and_offset_tensors() {
        let got: std::collections::HashMap<String, Tensor> = read_state_dict(&fixture("layouts.pt"), Path::new("layouts.pt")).unwrap().into_iter().collect();
        let rows = |n: &str| got[n].to_vec2::<f32>().unwrap();
        assert_eq!(rows("c"), vec![vec![0.0, 1.0, 2.0], vec![3.0, 4.0, 5.0]]);
        assert_eq!(rows("f"), vec![vec![0.0, 2.0, 4.0], vec![1.0, 3.0, 5.0]]);
        assert_eq!(got["o"].to_vec1::<f32>().unwrap(), vec![14.0, 15.0, 16.0]);
    }

    #[test]
    fn refuses_strided_tensors() {
        let e = read_state_dict(&fixture("strided.pt"), Path::new("strided.pt")).unwrap_err();
        assert_eq!(e.code(), "ERR_FORMAT", "{e}");
        assert!(e.to_string().contains("`s`") && e.to_string().contains("strides"), "{e}");
    }

    #[test]
    fn refuses_what_is_not_a_torch_zip() {
        let e = read_state_dict(b"not a zip", Path::new("x.bin")).unwrap_err();
        assert_eq!(e.code(), "ERR_FORMAT", "{e}");
        assert!(e.to_string().contains("x.bin"), "{e}");
    }
}
