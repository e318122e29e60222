export { constantSchedule, type ConstantScheduleOptions } from './constant.js'
export { cosineSchedule, type CosineScheduleOptions } from './cosine.js'
export { linearSchedule, type LinearScheduleOptions } from './linear.js'
export { resolveWarmup, type Schedule, type WarmupOptions } from './warmup.js'
