/** What the command palette makes of its text, kept apart from the UI so it can be tested. */

const NAME = "[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?";
const VERSIONS = new RegExp(`^(${NAME})/versions/([1-9][0-9]*)$`);
const ALIAS = new RegExp(`^(${NAME})@(${NAME})$`);
const SPACED = new RegExp(`^(${NAME})\\s+v?([1-9][0-9]*)$`);
const PARTIAL = new RegExp(`^(${NAME})(?:/(?:v(?:e(?:r(?:s(?:i(?:o(?:n(?:s/?)?)?)?)?)?)?)?)?|@|\\s+v?)?$`);

export interface VersionQuery {
  /** The model the text names. */
  name: string;
  /** A model reference the API resolves (`name/versions/N` or `name@alias`), when the text names one version. */
  reference?: string;
}

/**
 * `name/versions/3`, `name@alias` and `name 3` (or `name v3`) name one version of
 * a model; a bare or half-typed `name` (`name/ver`, `name@`) names only the model,
 * whose recent versions the palette lists.
 */
export function parseVersionQuery(text: string): VersionQuery | undefined {
  const t = text.trim().toLowerCase();
  let m = VERSIONS.exec(t) ?? SPACED.exec(t);
  if (m) return { name: m[1]!, reference: `${m[1]}/versions/${m[2]}` };
  m = ALIAS.exec(t);
  if (m) return { name: m[1]!, reference: `${m[1]}@${m[2]}` };
  m = PARTIAL.exec(t);
  if (m) return { name: m[1]! };
  return undefined;
}

/** Whether a training job matches the text: by id prefix, or by model name. */
export function jobMatches(job: { id?: string; model?: string; outputModel?: string }, text: string): boolean {
  const t = text.trim().toLowerCase();
  if (!t) return true;
  return (
    (job.id ?? "").toLowerCase().startsWith(t) ||
    (job.model ?? "").toLowerCase().includes(t) ||
    (job.outputModel ?? "").toLowerCase().includes(t)
  );
}
