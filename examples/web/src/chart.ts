/** A minimal loss curve on a <canvas>: axes, min/max labels and one polyline over the steps. */

export function drawLossChart(canvas: HTMLCanvasElement, losses: readonly number[], totalSteps: number): void {
  const ctx = canvas.getContext('2d')
  if (ctx === null) return
  const { width, height } = canvas
  const pad = { left: 48, right: 12, top: 12, bottom: 24 }
  const w = width - pad.left - pad.right
  const h = height - pad.top - pad.bottom
  ctx.clearRect(0, 0, width, height)
  ctx.font = '11px system-ui, sans-serif'
  ctx.fillStyle = '#5b6472'
  ctx.strokeStyle = '#c9ced8'
  ctx.lineWidth = 1
  ctx.beginPath()
  ctx.moveTo(pad.left, pad.top)
  ctx.lineTo(pad.left, pad.top + h)
  ctx.lineTo(pad.left + w, pad.top + h)
  ctx.stroke()

  const finite = losses.filter(Number.isFinite)
  if (finite.length === 0) {
    ctx.fillText('loss', pad.left + 6, pad.top + 12)
    return
  }
  // The losses' own range (plus a margin), so a small drop is visible.
  const max = Math.max(...finite)
  const min = Math.min(...finite)
  const margin = (max - min) * 0.08 || Math.abs(max) * 0.05 || 1
  const hi = max + margin
  const lo = min - margin
  const span = hi - lo
  const steps = Math.max(totalSteps, losses.length, 2)
  const x = (i: number): number => pad.left + (i / (steps - 1)) * w
  const y = (v: number): number => pad.top + (1 - (v - lo) / span) * h

  ctx.textAlign = 'right'
  ctx.fillText(max.toFixed(2), pad.left - 6, y(max) + 4)
  ctx.fillText(min.toFixed(2), pad.left - 6, y(min) + 4)
  ctx.textAlign = 'left'
  ctx.fillText(`step ${losses.length}/${totalSteps}`, pad.left + 6, height - 6)

  ctx.strokeStyle = '#2f6fdb'
  ctx.lineWidth = 2
  ctx.beginPath()
  losses.forEach((v, i) => {
    if (!Number.isFinite(v)) return
    if (i === 0) ctx.moveTo(x(i), y(v))
    else ctx.lineTo(x(i), y(v))
  })
  ctx.stroke()
  ctx.fillStyle = '#2f6fdb'
  for (const [i, v] of losses.entries()) {
    if (!Number.isFinite(v)) continue
    ctx.beginPath()
    ctx.arc(x(i), y(v), 2.5, 0, 2 * Math.PI)
    ctx.fill()
  }
}
