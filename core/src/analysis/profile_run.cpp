// Running a profile's samples on one model: draw each sample, analyse it, keep its values.
#include "sinkscope/analysis/profile.h"
#include "sinkscope/tokenizer/tokenizer.h"

#include <chrono>
#include <cstdio>

namespace sinkscope {

Status runProfileModel(const Model &model, const ProfileModel &info, const std::vector<ProfileTexts> &texts,
                       Profile &profile, const ProfileRunHooks &hooks)
{
    const ProfileSettings &settings = profile.settings;
    const auto tokenizer = model.tokenizer();
    const int64_t vocab = tokenizer ? tokenizer->vocabSize() : model.config().vocabSize;
    const auto [first, last] = shardRange(profile.shard, settings.samples);
    auto log = [&](const std::string &line) {
        if (hooks.log) {
            hooks.log(line);
        }
    };
    for (size_t d = 0; d < profile.data.size(); ++d) {
        const ProfileDataSet &set = profile.data[d];
        const ProfileTexts *source = d < texts.size() ? &texts[d] : nullptr;
        auto sampler = ProfileSampler::create(source, set, tokenizer.get(), vocab, settings);
        if (!sampler) {
            return Error{sampler.error().code, info.key + ": " + sampler.error().message};
        }
        ProfileCell cell;
        cell.model = info.key;
        cell.data = set.name;
        cell.distinct = sampler->distinct();
        if (source && (set.kind == ProfileDataKind::Jsonl || set.kind == ProfileDataKind::Folder)) {
            cell.skipped = static_cast<int64_t>(source->names.size()) - sampler->distinct();
        }
        const auto started = std::chrono::steady_clock::now();
        auto lastLog = started;
        for (int64_t i = first; i < last; ++i) {
            if (hooks.cancel && hooks.cancel->isCancelled()) {
                profile.cells.push_back(std::move(cell));
                profile.complete = false;
                return Error{ErrorCode::Cancelled, "cancelled"};
            }
            auto tokens = sampler->sample(i);
            if (!tokens) {
                return tokens.error();
            }
            if (!*tokens) {
                break; // a text data set with fewer usable texts than --samples
            }
            MetricsOptions options;
            options.sinkEpsilon = settings.epsilon;
            options.cancel = hooks.cancel;
            options.perKeyInJson = false;
            auto metrics = analyzeTokens(model, **tokens, options);
            if (!metrics) {
                if (metrics.error().code == ErrorCode::Cancelled) {
                    profile.cells.push_back(std::move(cell));
                    profile.complete = false;
                    return metrics.error();
                }
                return Error{metrics.error().code, info.key + ", " + set.name + " sample " + std::to_string(i) + ": " +
                                                       metrics.error().message};
            }
            if (cell.layout.blocks.empty()) {
                cell.layout = profileLayout(**metrics);
            }
            cell.samples.push_back({i, profileValues(**metrics, cell.layout)});
            const auto now = std::chrono::steady_clock::now();
            if (now - lastLog > std::chrono::seconds(2) || i + 1 == last) {
                const double seconds = std::chrono::duration<double>(now - started).count();
                char line[256];
                std::snprintf(line, sizeof line, "%s, %s: %lld/%lld samples (%.2f s each)", info.key.c_str(),
                              set.name.c_str(), static_cast<long long>(i + 1 - first),
                              static_cast<long long>(last - first), seconds / static_cast<double>(cell.samples.size()));
                log(line);
                lastLog = now;
            }
        }
        profile.cells.push_back(std::move(cell));
    }
    return Ok{};
}

} // namespace sinkscope
