/** The `code` of what `f` throws synchronously, or `'no error'` when it returns. */
export function code(f: () => unknown): string {
  try {
    f()
  } catch (e) {
    return String((e as { code?: unknown }).code)
  }
  return 'no error'
}

/** The `code` of what `f` rejects (or throws) with, or `'no error'` when it resolves. */
export async function codeAsync(f: () => unknown): Promise<string> {
  try {
    await f()
  } catch (e) {
    return String((e as { code?: unknown }).code)
  }
  return 'no error'
}
