/* json_grammar.c - fixed GBNF grammars for JSON output (RFC 8259): any
 * value, for `--json`, and an object, for OpenAI's response_format
 * {"type": "json_object"}. Numbers are limited to 16 significant digits
 * and whitespace between tokens to a newline and 20 spaces or tabs (as
 * llama.cpp's JSON-schema grammars do), so a model cannot stall forever. */
#include "smallmind.h"

#define JSON_RULES                                                                           \
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\") ws\n" \
    "object ::= \"{\" ws ( string \":\" ws value (\",\" ws string \":\" ws value)* )? \"}\" ws\n" \
    "array  ::= \"[\" ws ( value (\",\" ws value)* )? \"]\" ws\n"                         \
    "string ::= \"\\\"\" char* \"\\\"\" ws\n"                                              \
    "char   ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4})\n"   \
    "number ::= \"-\"? (\"0\" | [1-9] [0-9]{0,15}) (\".\" [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})? ws\n" \
    "ws     ::= | \" \" | \"\\n\" [ \\t]{0,20}\n"

const char *sm_grammar_json_value(void) { return "root   ::= value\n" JSON_RULES; }

const char *sm_grammar_json_object(void) { return "root   ::= object\n" JSON_RULES; }
