/* json_schema.h - JSON Schema to GBNF (for sm_grammar_parse), for the
 * command's --json-schema and the server's response_format json_schema.
 *
 * The behaviour follows llama.cpp's converter (common/json-schema-to-
 * grammar.cpp at c392e509, read, not copied): every schema its tests
 * convert we convert, with the same accepted and rejected strings, and the
 * ones it refuses we refuse. Supported: type (one or a list), properties,
 * required, additionalProperties, items, prefixItems, minItems, maxItems,
 * enum, const, anyOf, oneOf (as anyOf), allOf (of object properties),
 * local $ref into $defs/definitions, minLength, maxLength, pattern (a
 * regular expression subset), format (date, time, date-time, uuid),
 * minimum/maximum/exclusive* for integers, and for numbers when the bounds
 * are integers. As in llama.cpp, properties come in the schema's order and
 * an object with properties allows no others unless additionalProperties
 * says so; {} means an object.
 *
 * Keywords that constrain values and cannot be enforced by a grammar (not,
 * if/then/else, patternProperties, multipleOf, contains, ...) are refused
 * with an error naming them. Exceptions, which llama.cpp's tests require to
 * convert: uniqueItems and unknown string formats are not enforced and are
 * reported as warnings. Annotations (title, description, examples, ...)
 * and unknown keywords are ignored. */
#ifndef SM_JSON_SCHEMA_H
#define SM_JSON_SCHEMA_H

#include "smallmind.h"

#include <jansson.h>

/* Converts a schema to GBNF text (root rule "root"). *grammar is freed with
 * sm_json_schema_free. warnings (may be NULL) receives what was accepted
 * but not enforced, one "; "-separated line, empty when nothing. */
sm_status sm_json_schema_to_grammar(const json_t *schema, char **grammar, char *warnings, size_t warnings_cap,
                                    sm_error *err);
/* The same from schema text (a JSON document). */
sm_status sm_json_schema_text_to_grammar(const char *text, size_t len, char **grammar, char *warnings,
                                         size_t warnings_cap, sm_error *err);
void sm_json_schema_free(char *grammar);

#endif
