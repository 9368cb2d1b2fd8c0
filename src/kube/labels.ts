/** Kubernetes label keys and values (apimachinery `validation.IsQualifiedName`, `IsValidLabelValue`). */

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const MAX_NAME = 63
const MAX_PREFIX = 253

/** Whether `name` is a DNS-1123 subdomain (≤ 253 characters), as node names and label key prefixes are. */
export function isDnsSubdomain (name: string): boolean {
  return name.length <= MAX_PREFIX && DNS1123_SUBDOMAIN.test(name)
}

/** `name` or `prefix/name`: prefix a DNS-1123 subdomain, name ≤ 63 alphanumerics with `-_.` inside. */
export function isLabelKey (key: string): boolean {
  const slash = key.indexOf('/')
  const name = slash === -1 ? key : key.slice(slash + 1)
  if (slash !== -1 && !isDnsSubdomain(key.slice(0, slash))) return false
  return name.length <= MAX_NAME && NAME.test(name)
}

/** Empty, or ≤ 63 alphanumerics with `-_.` inside. */
export function isLabelValue (value: string): boolean {
  return value === '' || (value.length <= MAX_NAME && NAME.test(value))
}

/**
 * Parses `k=v,k2=v2` (a `--node-labels` option) into labels; blank text is none. Spaces around entries
 * are ignored. Throws a TypeError naming the entry when it is not `key=value`, its key or value is not a
 * valid label key or value, or its key came before.
 */
export function parseLabelList (text: string): Record<string, string> {
  const labels: Record<string, string> = {}
  if (text.trim() === '') return labels
  for (const raw of text.split(',')) {
    const entry = raw.trim()
    const bad = (why: string): TypeError => new TypeError(`label ${JSON.stringify(entry)} in ${JSON.stringify(text)}: ${why}`)
    const eq = entry.indexOf('=')
    if (eq === -1) throw bad('not key=value')
    const key = entry.slice(0, eq)
    const value = entry.slice(eq + 1)
    if (!isLabelKey(key)) throw bad('the key is not a valid label key ([prefix/]name, name at most 63 characters of [A-Za-z0-9-_.])')
    if (!isLabelValue(value)) throw bad('the value is not a valid label value (at most 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends)')
    if (Object.hasOwn(labels, key)) throw bad(`${key} is given twice`)
    labels[key] = value
  }
  return labels
}

/** Kubernetes `matchLabels`: every pair of the selector is a label with that value; `{}` matches all. */
export function matchesLabels (selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([key, value]) => Object.hasOwn(labels, key) && labels[key] === value)
}
