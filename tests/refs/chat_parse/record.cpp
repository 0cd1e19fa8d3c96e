// record.cpp - records how llama.cpp reads a model's reply in each of its
// chat formats (common_chat_parse, common/chat.cpp), the reference of
// tests/unit/test_server_tools.c: for each case of replies.json, one line of
// replies.jsonl, {"content", "reasoning_content", "tool_calls": [{"name",
// "arguments", "id"}]} or {"error": what it threw}. Built against a llama.cpp
// build outside this checkout by make_refs.sh. Recorded with llama.cpp c392e509.
#include "chat.h"

#include <fstream>
#include <iostream>
#include <map>
#include "json.hpp"

using json = nlohmann::ordered_json;

int main(int argc, char **argv) {
    if (argc != 2) {
        std::cerr << "usage: record replies.json > replies.jsonl\n";
        return 2;
    }
    // the formats as llama-server picks them, with its default --reasoning-format deepseek (and none)
    const std::map<std::string, common_chat_format> formats = {
        {"generic", COMMON_CHAT_FORMAT_GENERIC},
        {"hermes", COMMON_CHAT_FORMAT_HERMES_2_PRO},
        {"llama3", COMMON_CHAT_FORMAT_LLAMA_3_X},
        {"llama3_builtin", COMMON_CHAT_FORMAT_LLAMA_3_X_WITH_BUILTIN_TOOLS},
        {"nemo", COMMON_CHAT_FORMAT_MISTRAL_NEMO},
        {"functionary31", COMMON_CHAT_FORMAT_FUNCTIONARY_V3_1_LLAMA_3_1},
        {"functionary32", COMMON_CHAT_FORMAT_FUNCTIONARY_V3_2},
        {"firefunction", COMMON_CHAT_FORMAT_FIREFUNCTION_V2},
        {"r7b", COMMON_CHAT_FORMAT_COMMAND_R7B_EXTRACT_REASONING},
        {"deepseek_r1", COMMON_CHAT_FORMAT_DEEPSEEK_R1_EXTRACT_REASONING},
        // --reasoning-format none
        {"r7b_none", COMMON_CHAT_FORMAT_COMMAND_R7B},
        {"deepseek_r1_none", COMMON_CHAT_FORMAT_DEEPSEEK_R1},
    };
    std::ifstream in(argv[1]);
    json doc = json::parse(in);
    for (const auto & c : doc.at("cases")) {
        json out;
        try {
            auto msg = common_chat_parse(c.at("text").get<std::string>(), formats.at(c.at("format").get<std::string>()));
            json calls = json::array();
            for (const auto & tc : msg.tool_calls) calls.push_back({{"name", tc.name}, {"arguments", tc.arguments}, {"id", tc.id}});
            out = {{"content", msg.content}, {"reasoning_content", msg.reasoning_content}, {"tool_calls", calls}};
        } catch (const std::exception & e) {
            out = {{"error", e.what()}};
        }
        std::cout << out.dump() << "\n";
    }
    return 0;
}
