#include "commands.h"
#include "common.h"

namespace sinkscope::cli {
namespace {

struct GenerateCommandOptions {
    ModelOptions model;
    TokenOptions tokens;
    GenerateOptions generate; // its defaults: 20 tokens, greedy
};

constexpr const char *kProse =
    R"(Continues the prompt, printing tokens as they come. Greedy by default; --temperature > 0 samples with the
given --seed (reproducible).
)";

int runGenerate(const GenerateCommandOptions &o, std::ostream &out, std::ostream &err)
{
    requirePromptOrIds(o.tokens); // before the model loads
    warnIfSlowBlas(err);
    auto model = loadModel(o.model, err);
    const auto tokens = promptTokens(*model, o.tokens);
    auto tok = model->tokenizer();
    std::vector<int64_t> generated;
    size_t printed = 0;
    // Print only complete UTF-8 text: a token can end in the middle of a character.
    auto flush = [&](bool final) {
        if (!tok) {
            return;
        }
        const std::string text = tok->decode(generated);
        size_t end = text.size();
        if (!final) {
            size_t i = end;
            int back = 0;
            while (i > 0 && back < 4 && (static_cast<unsigned char>(text[i - 1]) & 0xC0) == 0x80) {
                --i;
                ++back;
            }
            if (i > 0) {
                const auto lead = static_cast<unsigned char>(text[i - 1]);
                const int need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
                if (need > back) {
                    end = i - 1;
                }
            }
        }
        if (end > printed) {
            out << text.substr(printed, end - printed) << std::flush;
            printed = end;
        }
    };
    if (tok) {
        out << tok->decode(tokens) << std::flush;
    }
    auto r = model->generate(tokens, o.generate, [&](int64_t id) {
        generated.push_back(id);
        if (tok) {
            flush(false);
        } else {
            out << id << " " << std::flush;
        }
    });
    flush(true);
    out << "\n";
    if (!r) {
        throw Failure{r.error().message};
    }
    return 0;
}

} // namespace

Command addGenerateCommand(CLI::App &cli)
{
    auto o = std::make_shared<GenerateCommandOptions>();
    CLI::App *cmd = cli.add_subcommand("generate", "continue a prompt, streaming tokens as they come");
    cmd->footer(kProse);
    addModelOptions(*cmd, o->model);
    addTokenOptions(*cmd, o->tokens);
    cmd->add_option("-n", o->generate.maxNewTokens, "tokens to generate")->type_name("N")->check(between(0, 1000000));
    cmd->add_option("--temperature", o->generate.temperature, "0: greedy; above 0: sample")
        ->type_name("T")
        ->check(between(0.0, 100.0));
    cmd->add_option("--seed", o->generate.seed, "the sampling seed (the same seed, the same tokens)")
        ->type_name("S")
        ->check(between<uint64_t>(0, 1000000000000000));
    return {cmd, [o](std::ostream &out, std::ostream &err) { return runGenerate(*o, out, err); }};
}

} // namespace sinkscope::cli
