/**
 * What the SQL engine may be asked to run, by name: the functions, table functions and types the
 * emitter writes and the engine check accepts. Everything else is refused. The lists are explicit
 * (not read from the engine at start-up) so an engine upgrade adds nothing without a review:
 * excluded on purpose are file readers, catalog and settings functions (duckdb_*, pg_*, current_setting,
 * getvariable, query), sequences (nextval), sleeping, logging, and SQL (de)serialization.
 */

/** PostgreSQL function spellings (after the pg_catalog prefix is dropped) and their engine names. */
export const FUNCTION_RENAMES: ReadonlyMap<string, string> = new Map([
  ['extract', 'date_part'],
  ['btrim', 'trim'],
  ['position', 'strpos'],
  ['char_length', 'length'],
  ['character_length', 'length'],
  ['pg_catalog.substring', 'substring'],
  // Size-amplifying functions go through server-defined macros that refuse huge sizes.
  ['repeat', 'kalam_repeat'],
  ['lpad', 'kalam_lpad'],
  ['rpad', 'kalam_rpad'],
  ['range', 'kalam_range'],
  ['generate_series', 'kalam_generate_series'],
  ['array_resize', 'kalam_list_resize'],
  ['list_resize', 'kalam_list_resize'],
  ['replace', 'kalam_replace'],
  ['regexp_replace', 'kalam_regexp_replace'],
  ['to_base', 'kalam_to_base'],
  ['equi_width_bins', 'kalam_equi_width_bins'],
  // Quadratic in their inputs' lengths: guarded by the product of the lengths.
  ['levenshtein', 'kalam_levenshtein'],
  ['editdist3', 'kalam_levenshtein'],
  ['damerau_levenshtein', 'kalam_damerau_levenshtein'],
  ['jaro_similarity', 'kalam_jaro_similarity'],
  ['jaro_winkler_similarity', 'kalam_jaro_winkler_similarity'],
]);

/**
 * The engine's own macros that name a parameter more than once: how many copies of each argument
 * (by position) their expansion makes. The engine expands macros at bind time, before a running
 * query can be stopped, so nesting them grows the statement exponentially (an attack review: 20
 * nested nullif calls, 233 bytes, reached 11.6 GB and 103 s). The binder counts the copies
 * (`ENGINE_COPIES_CHARS_MAX`). Found with `duckdb_functions() WHERE function_type = 'macro'`; the
 * engine-names test checks the list against the engine's definitions.
 */
export const ENGINE_MACRO_COPIES: ReadonlyMap<string, readonly number[]> = new Map([
  ['nullif', [2, 1]],
  ['array_pop_back', [2]],
  ['array_to_string', [2, 1]],
  ['fmod', [2, 2]],
  ['round_even', [3, 3]],
  ['roundbankers', [3, 3]],
  ['split_part', [2, 2, 2]],
  ['weighted_avg', [2, 2]],
  ['wavg', [2, 2]],
]);

/**
 * Characters of argument copies (macro expansions, upstream JSON functions, simple CASE and BETWEEN
 * operands, output aliases) one statement may add to the engine's SQL; columns, constants and
 * parameters copy for free. Measured: ~80,000 characters of nested nullif copies bound in 0.7 s.
 */
export const ENGINE_COPIES_CHARS_MAX = 20_000;

/** Copies of copies (nested constructs that copy an argument) multiply up to this: 6 nested nullif, 3 round_even. */
export const COPY_FACTOR_MAX = 64;

/**
 * strftime's format (a string literal: the binder sees to it) is at most this long. A format multiplies:
 * '%c' (2 characters) writes 19, and an attack review reached 2 GB of RSS with one vector of rows.
 */
export const STRFTIME_FORMAT_CHARS_MAX = 256;

/**
 * Functions that look for a pattern in a text, by the engine name, and how they look:
 * - `search`: a literal substring, compared byte by byte at each place its first byte occurs (the
 *   engine has fast paths for needles of up to 8 bytes only). A 50,000-byte needle whose bytes sum
 *   like the text's ran 1.5 s in 2 MB of text, 41 s for 200,000 bytes in 10 MB;
 * - `regex`: RE2, linear in the text for a given expression, but when its automaton outgrows its
 *   memory it simulates the expression state by state: ~5 ns per text byte per pattern byte
 *   (`repeat('(a|aa)', 3000)` against 1 MB: 90 s; an attack review's 82 s past a 30 s time limit).
 * Either way a single value costs up to text bytes × pattern bytes, inside one vector, where no
 * stop reaches. The pattern is the second argument.
 */
export const PATTERN_FUNCTIONS: ReadonlyMap<string, PatternKind> = new Map([
  ['strpos', 'search'], ['instr', 'search'], ['contains', 'search'],
  ['string_split', 'search'], ['str_split', 'search'], ['split', 'search'], ['string_to_array', 'search'], ['split_part', 'search'],
  ['regexp_matches', 'regex'], ['regexp_full_match', 'regex'], ['regexp_extract', 'regex'], ['regexp_extract_all', 'regex'],
  ['regexp_split_to_array', 'regex'], ['string_split_regex', 'regex'], ['str_split_regex', 'regex'],
]);

export type PatternKind = 'search' | 'regex';

/**
 * A pattern of at most this many bytes is never refused: the engine's substring search is linear
 * for needles of up to 8 bytes, and a 64-byte expression costs at most ~320 ns per text byte even
 * when RE2 simulates it state by state (nearly every hand-written expression and LIKE pattern is
 * shorter). An expression's bytes are counted with its repetitions written out (regexCostBytes):
 * `(a|aa){1000}b` is 15 bytes of text and 6,001 of program (a review: 7.4 s for 100 KB).
 */
export const PATTERN_FREE_BYTES: Readonly<Record<PatternKind, number>> = { search: 8, regex: 64 };

/**
 * The most text bytes × pattern bytes one call may cost per row. Every call is held to it, also one
 * over constants: the check around it keeps the engine from folding it to one value, so it runs
 * once per row (a review: a constant call over `range(3)` ran three times). The budget is spent up
 * to 2,048 times before a stop can land: a search at ~7·10¹⁰ byte pairs a second then takes at most
 * ~3 s per vector (10⁸ pairs a row, from 20,000 × 5,000), an expression past the free bytes at ~5 ns
 * a pair ~20 s (2·10⁶ pairs a row: a 20 KB text and a 100-byte expression).
 */
export function patternPairsMax(kind: PatternKind, limit: number): number {
  return rowGeneratedValuesMax(limit) * (kind === 'search' ? 5_000 : 100);
}

/** A counted repetition at a given position (sticky: no copy of the rest of the pattern per brace). */
const COUNTED = /\{(\d+)(?:,(\d*))?\}/y;

/** RE2's largest counted repetition: a pattern the binder cannot read may repeat any part this often. */
export const REGEX_REPEAT_MAX = 1000;

/**
 * An expression's size with its counted repetitions written out (`x{n}`, `x{n,}`, `x{n,m}` count `x`
 * n or m times; nested ones multiply), which is what RE2 compiles and, at worst, simulates per text
 * byte. An upper bound for well-formed expressions; anything odd counts as written.
 */
export function regexCostBytes(pattern: string): number {
  const groups: number[] = [];
  let total = 0;
  let last = 0; // the size of the atom just read: what a repetition applies to
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      last = 2;
      total += 2;
      i++;
    } else if (c === '[') {
      let j = i + 1;
      if (pattern[j] === '^') j++;
      if (pattern[j] === ']') j++;
      while (j < pattern.length && pattern[j] !== ']') j += pattern[j] === '\\' ? 2 : 1;
      last = j - i + 1;
      total += last;
      i = j;
    } else if (c === '(') {
      groups.push(total);
      total += 1;
      last = 0;
    } else if (c === ')') {
      const start = groups.pop() ?? 0;
      total += 1;
      last = total - start;
    } else if (c === '{') {
      COUNTED.lastIndex = i;
      const m = COUNTED.exec(pattern);
      if (m === null) {
        last = 1;
        total += 1;
        continue;
      }
      const times = Math.min(REGEX_REPEAT_MAX, Math.max(Number(m[1]), m[2] ? Number(m[2]) : 0, 1));
      total += last * (times - 1) + m[0].length;
      last *= times;
      i += m[0].length - 1;
    } else {
      last = 1;
      total += 1;
    }
  }
  return total;
}

/** The quadratic string distances: a call may compare at most this many character pairs per `generated_values_max`. */
const PAIRS_PER_VALUE = 10;

/**
 * The guarded macros (every rename to a `kalam_` macro): size-amplifying functions and the quadratic
 * string distances. A call the engine evaluates once (literal arguments, nothing computed per row
 * around it: the binder decides) gets the per-call cap (`generated_values_max`); any other call runs
 * once per row, and the engine evaluates 2,048 rows at a time before a running query can be stopped,
 * so it goes to the `_row` variant with a far smaller cap (`rowGeneratedValuesMax`).
 */
export const AMPLIFYING_MACROS: ReadonlySet<string> = new Set([...FUNCTION_RENAMES.values()].filter((engine) => engine.startsWith('kalam_')));

/** The names user SQL calls the guarded functions by (for messages). */
export const AMPLIFYING_FUNCTIONS: readonly string[] = [...FUNCTION_RENAMES].filter(([, engine]) => AMPLIFYING_MACROS.has(engine)).map(([name]) => name);

/** The macros LIKE and ILIKE are emitted as (likeMacros). */
export const LIKE_MACROS = { like: 'kalam_like', ilike: 'kalam_ilike' } as const;

/** What one per-row call may produce (or add, for replace): 1/500 of the per-call limit, at least 1,000. */
export function rowGeneratedValuesMax(limit: number): number {
  return Math.max(1000, Math.floor(limit / 500));
}

/** Table functions user SQL may call (their sizes are checked by the binder). */
export const TABLE_FUNCTIONS: ReadonlySet<string> = new Set(['range', 'generate_series', 'unnest']);

const SCALAR = `
abs acos acosh add age array_append array_apply array_cat array_concat array_contains array_cosine_distance
array_cosine_similarity array_cross_product array_distance array_distinct array_dot_product array_extract array_filter
array_grade_up array_has array_has_all array_has_any array_indexof array_inner_product array_intersect array_length
array_negative_dot_product array_negative_inner_product array_pop_back array_pop_front array_position array_prepend
array_push_back array_push_front array_reverse array_reverse_sort array_select array_slice array_sort
array_to_json array_to_string array_transform array_unique array_value array_where array_zip ascii asin asinh atan atan2
atanh base64 bin bit_count bit_length bit_position cardinality cbrt ceil ceiling century chr coalesce concat concat_ws
contains cos cosh cot current_date current_localtime current_localtimestamp damerau_levenshtein date_add date_diff
date_part date_sub date_trunc datediff datepart datesub datetrunc day dayname dayofmonth dayofweek dayofyear
days_in_month decade decode degrees divide editdist3 element_at encode ends_with epoch epoch_ms epoch_ns epoch_us
equi_width_bins era error even exp factorial fdiv filter flatten floor fmod format_bytes from_base64 from_binary
from_hex from_json from_json_strict gamma gcd gen_random_uuid get_bit get_current_time get_current_timestamp greatest
greatest_common_divisor grouping hamming hash hex hour instr isfinite isinf isnan isodow isoyear jaccard
jaro_similarity jaro_winkler_similarity json json_array json_array_length json_contains json_exists json_extract
json_extract_path json_extract_path_text json_extract_string json_keys json_merge_patch json_object json_pretty json_quote
json_structure json_transform json_transform_strict json_type json_valid json_value julian last_day lcase lcm least
least_common_multiple left left_grapheme len length length_grapheme levenshtein lgamma list_aggr
list_aggregate list_any_value list_append list_apply list_approx_count_distinct list_avg list_bit_and list_bit_or
list_bit_xor list_bool_and list_bool_or list_cat list_concat list_contains list_cosine_distance list_cosine_similarity
list_count list_distance list_distinct list_dot_product list_element list_entropy list_extract list_filter list_first
list_grade_up list_has list_has_all list_has_any list_histogram list_indexof list_inner_product list_intersect
list_kurtosis list_kurtosis_pop list_last list_mad list_max list_median list_min list_mode list_negative_dot_product
list_negative_inner_product list_pack list_position list_prepend list_product list_reverse list_reverse_sort
list_select list_sem list_skewness list_slice list_sort list_stddev_pop list_stddev_samp list_string_agg list_sum
list_transform list_unique list_value list_var_pop list_var_samp list_where list_zip ln log log10 log2 lower ltrim
make_date make_time make_timestamp make_timestamp_ms make_timestamp_ns make_timestamptz map map_concat map_contains
map_contains_entry map_contains_value map_entries map_extract map_extract_value map_from_entries map_keys map_values md5
md5_number md5_number_lower md5_number_upper microsecond millennium millisecond minute mismatches mod month monthname
multiply nanosecond nextafter nfc_normalize normalized_interval now nullif
octet_length ord pi pow power prefix quarter radians random regexp_escape regexp_extract regexp_extract_all
regexp_full_match regexp_matches regexp_replace regexp_split_to_array replace reverse right right_grapheme round
round_even roundbankers row row_to_json rtrim second set_bit sha1 sha256 sign signbit sin sinh split split_part sqrt
starts_with str_split str_split_regex strftime string_split string_split_regex string_to_array strip_accents strlen strpos
strptime struct_concat struct_contains struct_extract struct_extract_at struct_has struct_indexof struct_insert
struct_keys struct_pack struct_position struct_update struct_values substr substring substring_grapheme subtract suffix
tan tanh time_bucket timezone timezone_hour timezone_minute to_base to_base64 to_binary to_centuries to_days to_decades
to_hex to_hours to_json to_microseconds to_millennia to_milliseconds to_minutes to_months to_quarters to_seconds
to_timestamp to_weeks to_years today transaction_timestamp translate trim trunc try_strptime typeof ucase unbin unhex
unicode union_extract union_tag union_value upper url_decode url_encode uuid uuid_extract_timestamp uuid_extract_version
unnest uuidv4 uuidv7 week weekday weekofyear xor year yearweek
`;

const AGGREGATE_AND_WINDOW = `
any_value approx_count_distinct approx_quantile arbitrary arg_max arg_max_null arg_min arg_min_null argmax argmin
array_agg avg bit_and bit_or bit_xor bool_and bool_or corr count count_if count_star countif covar_pop covar_samp
cume_dist dense_rank entropy favg first first_value fsum geomean geometric_mean group_concat histogram kahan_sum
kurtosis kurtosis_pop lag last last_value lead list listagg mad max max_by mean median min min_by mode nth_value ntile
percent_rank percentile_cont percentile_disc product quantile quantile_cont quantile_disc rank regr_avgx regr_avgy
regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy reservoir_quantile row_number sem skewness
stddev stddev_pop stddev_samp string_agg sum sumkahan var_pop var_samp variance weighted_avg wavg
`;

/** Operators appear in the engine's parse tree as functions named by their symbol. */
const OPERATORS = '! !__postfix !~~ !~~* % & && * ** + - ->> -> / // << <=> <@ >> @ @> ^ ^@ | || ~ ~~ ~~* ~~~ !~ ~* !~*';

const words = (text: string): string[] => text.split(/\s+/).filter((w) => w.length > 0);

/** Functions (scalar, aggregate, window, operators) the engine check accepts. */
export const ENGINE_FUNCTIONS: ReadonlySet<string> = new Set([
  ...words(SCALAR), ...words(AGGREGATE_AND_WINDOW), ...words(OPERATORS),
  // The server's macros (engineMacros), which the binder emits in place of the functions they guard.
  ...[...AMPLIFYING_MACROS].flatMap((macro) => [macro, `${macro}_row`]), LIKE_MACROS.like, LIKE_MACROS.ilike,
]);

/** Aggregate and window functions: they combine many rows' values into one. */
export const AGGREGATE_FUNCTIONS: ReadonlySet<string> = new Set(words(AGGREGATE_AND_WINDOW));

/** Functions whose value differs per call although their arguments do not. */
export const VOLATILE_FUNCTIONS: ReadonlySet<string> = new Set(['random', 'gen_random_uuid', 'uuid', 'uuidv4', 'uuidv7']);

/** Function names as user SQL spells them: the engine names plus the PostgreSQL spellings we rename. */
export function isAllowedFunction(name: string): boolean {
  // The server's macros are the binder's to call (a user calling the per-call variant directly would skip the per-row cap).
  if (name.startsWith('kalam_')) return false;
  return ENGINE_FUNCTIONS.has(FUNCTION_RENAMES.get(name) ?? name) || FUNCTION_RENAMES.has(name);
}

/**
 * Type names accepted in casts, as PostgreSQL's parser leaves them (pg_catalog names lose their
 * prefix first), mapped to engine type text. Anything else is refused rather than passed through.
 */
export const CAST_TYPES: ReadonlyMap<string, string> = new Map([
  ['bool', 'BOOLEAN'], ['boolean', 'BOOLEAN'],
  ['int2', 'SMALLINT'], ['smallint', 'SMALLINT'],
  ['int4', 'INTEGER'], ['int', 'INTEGER'], ['integer', 'INTEGER'],
  ['int8', 'BIGINT'], ['bigint', 'BIGINT'], ['hugeint', 'HUGEINT'],
  ['float4', 'REAL'], ['real', 'REAL'], ['float', 'DOUBLE'], ['float8', 'DOUBLE'], ['double', 'DOUBLE'],
  ['numeric', 'DECIMAL'], ['decimal', 'DECIMAL'],
  ['text', 'VARCHAR'], ['varchar', 'VARCHAR'], ['bpchar', 'VARCHAR'], ['char', 'VARCHAR'], ['string', 'VARCHAR'],
  ['timestamp', 'TIMESTAMP'], ['timestamptz', 'TIMESTAMPTZ'], ['date', 'DATE'], ['time', 'TIME'], ['interval', 'INTERVAL'],
  ['json', 'JSON'], ['jsonb', 'JSON'], ['uuid', 'UUID'], ['bytea', 'BLOB'], ['blob', 'BLOB'],
]);

/**
 * Server-defined macros behind the renamed size-amplifying functions: they refuse outputs past
 * `limit` elements or characters (replace and regexp_replace: past `limit` added characters) before
 * the engine allocates them; the `_row` variants do the same with the per-row cap.
 * The per-call variants take constant arguments only (the binder sees to it), so the engine folds
 * them to one value and naming a parameter twice costs nothing. The `_row` variants name each
 * parameter once, handing them to a lambda through a one-element list of a struct: a body that
 * named a parameter twice copied its argument's expression at every level of nesting (24 nested
 * repeat() calls took the engine's binder past 12 GB). The engine does not fold that form, which is
 * why constant calls keep the plain one.
 */
export function engineMacros(limit: number): string[] {
  return [...macros('', limit, limit), ...macros('_row', rowGeneratedValuesMax(limit), limit), ...likeMacros()];
}

/**
 * LIKE and ILIKE as RE2 regular expressions, which match in linear time: the engine's own LIKE
 * backtracks on patterns mixing several `%` with `_` ('%a%a%a%_b' against 800 characters ran for
 * 110 s, on two cores, past every time limit: a stop reaches no engine thread inside one value).
 * `regexp_escape` escapes every regex character and `%` (as `\%`), not `_`; LIKE has no escape
 * character here (a backslash is literal, as in the engine's LIKE). Each parameter is named once.
 */
function likeMacros(): string[] {
  const regex = (flags: string): string => `'(?${flags})' || replace(replace(regexp_escape(p), '\\%', '.*'), '_', '.')`;
  return [
    `CREATE OR REPLACE MACRO ${LIKE_MACROS.like}(x, p) AS regexp_full_match(CAST(x AS VARCHAR), ${regex('s')})`,
    `CREATE OR REPLACE MACRO ${LIKE_MACROS.ilike}(x, p) AS regexp_full_match(CAST(x AS VARCHAR), ${regex('si')})`,
  ];
}

/** The error a pattern function over its budget (patternPairsMax) raises. */
export function patternRefusal(kind: PatternKind, max: number): string {
  const what = kind === 'search' ? 'A substring search' : 'A regular expression (or LIKE pattern)';
  return `${what} over ${PATTERN_FREE_BYTES[kind]} bytes may cost at most ${max} text bytes times pattern bytes in one row: shorten the pattern or the text`;
}

function macros(suffix: '' | '_row', limit: number, limit0: number): string[] {
  const where = suffix === '' ? '' : ' in one row';
  const tooLarge = (name: string): string => `error('${name} would produce more than ${limit} elements${where}')`;
  // `p.x` in a check or call is parameter x: a struct field in the _row form, the parameter itself in the other.
  // replace and regexp_replace search too (PATTERN_FUNCTIONS): that is checked first, since the
  // growth check itself runs the search.
  const searchWork = (kind: PatternKind, text: string, pattern: string): string => {
    // A pattern computed per row: any counted repetition may write a part out up to REGEX_REPEAT_MAX times.
    const cost = kind === 'regex' ? `(strlen(${pattern}) * CASE WHEN contains(${pattern}, '{') THEN ${REGEX_REPEAT_MAX} ELSE 1 END)` : `strlen(${pattern})`;
    return `WHEN ${cost} > ${PATTERN_FREE_BYTES[kind]} AND strlen(${text}) * ${cost} > ${patternPairsMax(kind, limit0)} `
      + `THEN error('${patternRefusal(kind, patternPairsMax(kind, limit0))}') `;
  };
  const guarded = (name: string, fields: readonly string[], tooBig: string, call: string, refusal = tooLarge(name), work = ''): string => {
    const body = `CASE ${work}WHEN ${tooBig} THEN ${refusal} ELSE ${call} END`;
    if (suffix === '') return `(${fields.join(', ')}) AS ${body.replace(/\bp\./g, '')}`;
    const struct = fields.filter((f) => f !== 'o').map((f) => `'${f}': ${f}`).join(', ');
    return `(${fields.join(', ')}) AS list_transform([{${struct}}], p -> ${body})[1]`;
  };
  const macro = (name: string, ...overloads: string[]): string => `CREATE OR REPLACE MACRO kalam_${name}${suffix}${overloads.join(',\n  ')}`;
  // regexp_replace adds at most its replacement per match plus, per back-reference (\N) in it, the
  // matched text: at most the input's length in all, the matches not overlapping. Its options
  // (`o`, a string literal: the binder refuses anything else) stay a parameter: the engine needs a constant.
  const regexGrowth = (matches: string): string => `${matches} * length(p.t) + (length(p.t) - length(replace(p.t, '\\', ''))) * length(p.s) > ${limit}`;
  return [
    macro('repeat', guarded('repeat', ['s', 'n'], `length(p.s::VARCHAR) * greatest(p.n, 0) > ${limit}`, 'repeat(p.s, p.n)')),
    ...['lpad', 'rpad'].map((f) => macro(f,
      guarded(f, ['s', 'n'], `p.n > ${limit}`, `${f}(p.s, p.n, ' ')`),
      guarded(f, ['s', 'n', 'f'], `p.n > ${limit}`, `${f}(p.s, p.n, p.f)`))),
    macro('list_resize',
      guarded('list_resize', ['l', 'n'], `p.n > ${limit}`, 'list_resize(p.l, p.n)'),
      guarded('list_resize', ['l', 'n', 'v'], `p.n > ${limit}`, 'list_resize(p.l, p.n, p.v)')),
    ...['range', 'generate_series'].map((f) => macro(f,
      guarded(f, ['a'], `p.a > ${limit}`, `${f}(p.a)`),
      guarded(f, ['a', 'b'], `p.b - p.a > ${limit}`, `${f}(p.a, p.b)`),
      guarded(f, ['a', 'b', 'c'], `(p.b - p.a) // p.c > ${limit}`, `${f}(p.a, p.b, p.c)`))),
    // Exact: each occurrence of f adds length(t) - length(f).
    macro('replace', guarded('replace', ['s', 'f', 't'],
      `length(p.f) > 0 AND (length(p.s) - length(replace(p.s, p.f, ''))) // length(p.f) * (length(p.t) - length(p.f)) > ${limit}`, 'replace(p.s, p.f, p.t)',
      tooLarge('replace'), searchWork('search', 'p.s', 'p.f'))),
    macro('regexp_replace',
      guarded('regexp_replace', ['s', 'r', 't'], regexGrowth('1'), 'regexp_replace(p.s, p.r, p.t)', tooLarge('regexp_replace'), searchWork('regex', 'p.s', 'p.r')),
      guarded('regexp_replace', ['s', 'r', 't', 'o'],
        regexGrowth(`CASE WHEN contains(o, 'g') THEN len(regexp_extract_all(p.s, p.r, 0, replace(o, 'g', ''))) ELSE 1 END`),
        'regexp_replace(p.s, p.r, p.t, o)', tooLarge('regexp_replace'), searchWork('regex', 'p.s', 'p.r'))),
    // to_base's third argument pads the digits to that length; equi_width_bins makes a list of its third argument's length.
    macro('to_base',
      guarded('to_base', ['n', 'r'], 'false', 'to_base(p.n, p.r)'),
      guarded('to_base', ['n', 'r', 'm'], `p.m > ${limit}`, 'to_base(p.n, p.r, p.m)')),
    macro('equi_width_bins', guarded('equi_width_bins', ['a', 'b', 'c', 'd'], `p.c > ${limit}`, 'equi_width_bins(p.a, p.b, p.c, p.d)')),
    // Time, not memory: a call compares every character pair, and a running query is stopped only
    // between vectors (2,048 rows), so a row may compare at most PAIRS_PER_VALUE × its cap.
    ...['levenshtein', 'damerau_levenshtein', 'jaro_similarity', 'jaro_winkler_similarity'].map((f) => macro(f,
      guarded(f, ['a', 'b'], `length(p.a) * length(p.b) > ${PAIRS_PER_VALUE * limit}`, `${f}(p.a, p.b)`,
        `error('${f} would compare more than ${PAIRS_PER_VALUE * limit} character pairs${where}')`))),
  ];
}
