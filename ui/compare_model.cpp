#include "compare_model.h"

#include "model_source.h"

#include "sinkscope/model/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

namespace sinkscope::ui {

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Runs one model; errors other than cancellation stay in the entry.
Result<CompareEntry> compareOne(const CompareRequest &request, const CompareInput &input, const CancelToken &cancel,
                                const ProgressCallback &progress)
{
    CompareEntry entry;
    entry.source = input.source;
    entry.model = input.model;
    const std::string label = input.source.empty() ? std::string("the default model") : sourceLabel(input.source);
    if (!entry.model) {
        auto loaded = loadModelSource(input.source, request.device, [&](double f, const std::string &what) {
            return progress(0.3 * f, label + ": " + what);
        });
        if (!loaded.ok()) {
            if (loaded.error().code == ErrorCode::Cancelled || cancel.isCancelled()) {
                return makeError(ErrorCode::Cancelled, "comparison cancelled");
            }
            entry.error = loaded.error().message;
            entry.label = label;
            return entry;
        }
        entry.model = loaded.value().model;
    }
    entry.name = entry.model->config().name.empty() ? label : entry.model->config().name;
    entry.step = input.source.empty() ? std::nullopt : checkpointStep(input.source);
    if (!entry.step) {
        entry.step = stepInName(entry.model->config().name);
    }
    entry.label = entry.step ? "step " + std::to_string(*entry.step) : label;
    auto tokens = entry.model->tokenize(request.prompt);
    if (!tokens.ok()) {
        entry.error = tokens.error().message;
        return entry;
    }
    entry.tokenCount = static_cast<int64_t>(tokens.value().size());
    MetricsOptions options = request.metrics;
    options.cancel = &cancel;
    options.progress = [&](double f, const std::string &what) { return progress(0.3 + 0.7 * f, label + ": " + what); };
    auto metrics = analyzeTokens(*entry.model, tokens.value(), options);
    if (!metrics.ok()) {
        if (metrics.error().code == ErrorCode::Cancelled || cancel.isCancelled()) {
            return makeError(ErrorCode::Cancelled, "comparison cancelled");
        }
        entry.error = entry.name + ": " + metrics.error().message;
        return entry;
    }
    entry.metrics = metrics.value();
    return entry;
}

} // namespace

std::vector<const CompareEntry *> CompareResult::entries() const
{
    std::vector<const CompareEntry *> all;
    if (reference) {
        all.push_back(&*reference);
    }
    for (const CompareEntry &e : series) {
        all.push_back(&e);
    }
    return all;
}

std::string sourceLabel(const std::string &source)
{
    std::filesystem::path path(source);
    if (!path.has_filename()) {
        path = path.parent_path(); // "folder/"
    }
    if (path.filename() == "config.json") {
        path = path.parent_path(); // a Hugging Face folder named by its config.json
    }
    const std::string name = path.filename().string();
    return name.empty() ? source : name;
}

Result<CompareResult> computeComparison(const CompareRequest &request, const CancelToken &cancel,
                                        const ProgressCallback &progress)
{
    CompareResult result;
    result.prompt = request.prompt;
    const size_t total = request.models.size() + (request.reference ? 1 : 0);
    size_t done = 0;
    // Each model gets an equal share of the progress bar, and its label says which one runs.
    auto runOne = [&](const CompareInput &input) -> Result<CompareEntry> {
        if (cancel.isCancelled()) {
            return makeError(ErrorCode::Cancelled, "comparison cancelled");
        }
        const size_t index = done++;
        const std::string prefix = "Comparing " + std::to_string(index + 1) + "/" + std::to_string(total) + ", ";
        return compareOne(request, input, cancel, [&](double f, const std::string &label) {
            const bool go = !progress || progress((double(index) + f) / double(total), prefix + label);
            return go && !cancel.isCancelled();
        });
    };
    if (request.reference) {
        auto entry = runOne(*request.reference);
        if (!entry.ok()) {
            return entry.error();
        }
        result.reference = std::move(entry.value());
    }
    std::vector<CompareEntry> opened;
    for (const CompareInput &input : request.models) {
        auto entry = runOne(input);
        if (!entry.ok()) {
            return entry.error();
        }
        opened.push_back(std::move(entry.value()));
    }
    std::vector<std::optional<int64_t>> steps;
    for (const CompareEntry &e : opened) {
        steps.push_back(e.step);
    }
    for (size_t i : orderBySteps(steps)) {
        result.series.push_back(std::move(opened[i]));
    }
    return result;
}

PooledGrid compareHeadGrid(const SinkMetrics &metrics, const std::string &metric)
{
    const HeadMetric *m = metrics.headMetric(metric);
    return m ? headMetricGrid(*m) : PooledGrid{};
}

ValueRange finiteRange(const PooledGrid &grid)
{
    double lo = std::numeric_limits<double>::infinity();
    double hi = -std::numeric_limits<double>::infinity();
    for (float v : grid.data) {
        if (std::isfinite(v)) {
            lo = std::min(lo, double(v));
            hi = std::max(hi, double(v));
        }
    }
    if (!std::isfinite(lo)) {
        return {0.0, 1.0};
    }
    return {lo, hi > lo ? hi : lo + 1e-6};
}

ValueRange sharedRange(const PooledGrid &a, const PooledGrid &b)
{
    PooledGrid both;
    both.data = a.data;
    both.data.insert(both.data.end(), b.data.begin(), b.data.end());
    return finiteRange(both);
}

std::optional<PooledGrid> differenceGrid(const PooledGrid &a, const PooledGrid &b)
{
    if (a.nx != b.nx || a.ny != b.ny || a.data.size() != b.data.size()) {
        return std::nullopt;
    }
    PooledGrid diff = b;
    for (size_t i = 0; i < diff.data.size(); ++i) {
        diff.data[i] = b.data[i] - a.data[i]; // NaN propagates
    }
    return diff;
}

PooledGrid layerCheckpointGrid(const std::vector<const SinkMetrics *> &series, const std::string &metric)
{
    PooledGrid grid;
    grid.nx = static_cast<int64_t>(series.size());
    for (const SinkMetrics *m : series) {
        if (m) {
            grid.ny = std::max(grid.ny, m->layers);
        }
    }
    grid.window = TokenWindow{0, grid.ny - 1, 0, grid.nx - 1};
    grid.data.assign(size_t(grid.nx * grid.ny), kNaN);
    for (int64_t checkpoint = 0; checkpoint < grid.nx; ++checkpoint) {
        const SinkMetrics *m = series[size_t(checkpoint)];
        const HeadMetric *h = m ? m->headMetric(metric) : nullptr;
        if (!h || h->values.shape.size() != 2) {
            continue;
        }
        const int64_t layers = h->values.dim(0);
        const int64_t heads = h->values.dim(1);
        for (int64_t layer = 0; layer < layers; ++layer) {
            double sum = 0;
            int64_t count = 0;
            for (int64_t head = 0; head < heads; ++head) {
                const float v = h->values.data[size_t(layer * heads + head)];
                if (!std::isnan(v)) {
                    sum += v;
                    ++count;
                }
            }
            if (count > 0) {
                grid.data[size_t(layer * grid.nx + checkpoint)] = float(sum / double(count));
            }
        }
    }
    return grid;
}

} // namespace sinkscope::ui
