// The "model": deterministic and offline, so the example runs anywhere and its test can check the
// output. A real agent would call an LLM here; nothing else in the agent would change.
export const MODEL = 'first-sentence+keywords/v1';

const STOP = new Set(('a an and are as at be but by for from has have in into is it its of on or that the this to was were ' +
  'will with we you your our their they he she them then than so if not no can just also more most very about').split(' '));

/** { summary: the first sentence (at most 160 characters), keywords: the 3 most frequent content words }. */
export function summarize(text) {
  const compact = String(text).replace(/\s+/g, ' ').trim();
  const first = (/^.*?[.!?](?=\s|$)/.exec(compact)?.[0] ?? compact).trim();
  const summary = first.length <= 160 ? first : `${first.slice(0, 157).trimEnd()}...`;
  const counts = new Map();
  for (const word of compact.toLowerCase().match(/[a-z][a-z0-9'-]{2,}/g) ?? []) {
    if (!STOP.has(word)) counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  // Most frequent first; ties in order of first appearance (Map keeps insertion order, sort is stable).
  const keywords = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([word]) => word);
  return { summary, keywords };
}
