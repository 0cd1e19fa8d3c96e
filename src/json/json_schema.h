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

/* A grammar built of several schemas and rules written around them, as
 * llama.cpp's common_grammar_builder builds the tools' formats: rule names
 * are sanitized and numbered apart as the converter's own; the fixed rules
 * (space, string, ...) are shared. A failure is kept (the later calls
 * return NULL) and reported by sm_json_grammar_take into the sm_error given
 * to sm_json_grammar_new. */
typedef struct sm_json_grammar sm_json_grammar;
sm_json_grammar *sm_json_grammar_new(sm_error *err);
/* schema's rules, its own named from name; returns that rule's name (valid
 * while g lives) or NULL */
const char *sm_json_grammar_schema(sm_json_grammar *g, const char *name, const json_t *schema);
/* name ::= body ("root" stays root); returns the name used or NULL */
const char *sm_json_grammar_rule(sm_json_grammar *g, const char *name, const char *body);
/* The text, root first, into *text (free with sm_json_schema_free); g is freed. */
sm_status sm_json_grammar_take(sm_json_grammar *g, char **text);
void sm_json_grammar_free(sm_json_grammar *g);

#endif
