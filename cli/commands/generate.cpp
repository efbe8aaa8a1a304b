#include "commands.h"
#include "common.h"

namespace sinkscope::cli {
namespace {

constexpr const char *kGenerateHelp =
    R"(Usage: sinkscope-cli generate --prompt TEXT [--model FILE] [-n N] [--temperature T --seed S] [--bos | --no-bos]

Continues the prompt, printing tokens as they come. Greedy by default; --temperature > 0 samples with the
given --seed (reproducible).
)";

int cmdGenerate(const Args &a, std::ostream &out, std::ostream &err)
{
    GenerateOptions opt;
    opt.maxNewTokens = static_cast<int>(a.number("-n", 20, 0, 1e6));
    opt.temperature = a.number("--temperature", 0, 0, 100);
    opt.seed = static_cast<uint64_t>(a.number("--seed", 0, 0, 1e15));
    requirePromptOrIds(a);
    warnIfSlowBlas(err);
    auto model = loadModel(a, err);
    const auto tokens = promptTokens(*model, a);
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
    auto r = model->generate(tokens, opt, [&](int64_t id) {
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

Command generateCommand()
{
    return {"generate",
            kGenerateHelp,
            {"--bos", "--no-bos"},
            {"--model", "--prompt", "-n", "--temperature", "--seed", "--ids"},
            cmdGenerate};
}

} // namespace sinkscope::cli
