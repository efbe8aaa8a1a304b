// The Lookback detector: L2-regularised logistic regression on per-head Lookback ratios (Chuang et al. 2024
// fit scikit-learn's LogisticRegression on the same features), held-out AUROC.
#include "sinkscope/probes/probes.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <numeric>
#include <sstream>

namespace sinkscope {

namespace {

double sigmoid(double z)
{
    return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
}

// Solves A x = b for symmetric positive definite A (n x n, row-major) by Cholesky; false if not SPD.
bool choleskySolve(std::vector<double> a, std::vector<double> &b, size_t n)
{
    for (size_t j = 0; j < n; ++j) {
        double d = a[j * n + j];
        for (size_t k = 0; k < j; ++k) {
            d -= a[j * n + k] * a[j * n + k];
        }
        if (d <= 0) {
            return false;
        }
        d = std::sqrt(d);
        a[j * n + j] = d;
        for (size_t i = j + 1; i < n; ++i) {
            double s = a[i * n + j];
            for (size_t k = 0; k < j; ++k) {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    for (size_t i = 0; i < n; ++i) { // L y = b
        double s = b[i];
        for (size_t k = 0; k < i; ++k) {
            s -= a[i * n + k] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    for (size_t i = n; i-- > 0;) { // L^T x = y
        double s = b[i];
        for (size_t k = i + 1; k < n; ++k) {
            s -= a[k * n + i] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    return true;
}

} // namespace

double LogisticModel::predict(const std::vector<double> &features) const
{
    double z = bias;
    for (size_t i = 0; i < weights.size() && i < features.size(); ++i) {
        z += weights[i] * (features[i] - mean[i]) / scale[i];
    }
    return sigmoid(z);
}

Result<LogisticModel> fitLogistic(const std::vector<std::vector<double>> &x, const std::vector<int> &labels, double l2,
                                  int iterations)
{
    if (x.empty() || x.size() != labels.size() || x.front().empty()) {
        return makeError(ErrorCode::InvalidArgument,
                         "logistic regression: no samples, or labels and samples differ in number");
    }
    const size_t n = x.size(), d = x.front().size();
    for (size_t i = 0; i < n; ++i) {
        if (x[i].size() != d) {
            return makeError(ErrorCode::InvalidArgument, "logistic regression: sample " + std::to_string(i) + " has " +
                                                             std::to_string(x[i].size()) + " features, not " +
                                                             std::to_string(d));
        }
        if (labels[i] != 0 && labels[i] != 1) {
            return makeError(ErrorCode::InvalidArgument, "logistic regression: labels must be 0 or 1");
        }
    }
    if (!(l2 > 0)) {
        return makeError(ErrorCode::InvalidArgument, "logistic regression: the L2 weight must be positive");
    }
    LogisticModel m;
    m.mean.assign(d, 0.0);
    m.scale.assign(d, 1.0);
    for (size_t f = 0; f < d; ++f) {
        double sum = 0, sq = 0;
        for (size_t i = 0; i < n; ++i) {
            sum += x[i][f];
        }
        m.mean[f] = sum / static_cast<double>(n);
        for (size_t i = 0; i < n; ++i) {
            sq += (x[i][f] - m.mean[f]) * (x[i][f] - m.mean[f]);
        }
        const double sd = std::sqrt(sq / static_cast<double>(n));
        m.scale[f] = sd > 1e-12 ? sd : 1.0;
    }
    // Standardised design with the intercept last.
    const size_t p = d + 1;
    std::vector<double> z(n * p);
    for (size_t i = 0; i < n; ++i) {
        for (size_t f = 0; f < d; ++f) {
            z[i * p + f] = (x[i][f] - m.mean[f]) / m.scale[f];
        }
        z[i * p + d] = 1.0;
    }
    std::vector<double> beta(p, 0.0);
    const double inv = 1.0 / static_cast<double>(n);
    auto loss = [&](const std::vector<double> &b) {
        double l = 0;
        for (size_t i = 0; i < n; ++i) {
            double s = 0;
            for (size_t f = 0; f < p; ++f) {
                s += z[i * p + f] * b[f];
            }
            // log(1 + e^s) - y s, stable
            l += (s > 0 ? s + std::log1p(std::exp(-s)) : std::log1p(std::exp(s))) - labels[i] * s;
        }
        double reg = 0;
        for (size_t f = 0; f < d; ++f) {
            reg += b[f] * b[f];
        }
        return l * inv + 0.5 * l2 * reg;
    };
    double current = loss(beta);
    for (int it = 0; it < iterations; ++it) {
        std::vector<double> grad(p, 0.0), hess(p * p, 0.0);
        for (size_t i = 0; i < n; ++i) {
            const double *row = z.data() + i * p;
            double s = 0;
            for (size_t f = 0; f < p; ++f) {
                s += row[f] * beta[f];
            }
            const double pr = sigmoid(s), w = pr * (1 - pr);
            for (size_t a = 0; a < p; ++a) {
                grad[a] += (pr - labels[i]) * row[a] * inv;
                for (size_t b = 0; b <= a; ++b) {
                    hess[a * p + b] += w * row[a] * row[b] * inv;
                }
            }
        }
        for (size_t a = 0; a < p; ++a) {
            for (size_t b = 0; b < a; ++b) {
                hess[b * p + a] = hess[a * p + b];
            }
        }
        for (size_t f = 0; f < d; ++f) {
            grad[f] += l2 * beta[f];
            hess[f * p + f] += l2;
        }
        hess[d * p + d] += 1e-9; // the intercept is unpenalised; keeps the system definite when w ~ 0
        std::vector<double> step = grad;
        if (!choleskySolve(hess, step, p)) {
            return makeError(ErrorCode::Internal, "logistic regression: the Newton system is not positive definite");
        }
        // Backtracking keeps every step a descent step.
        double t = 1.0, next = current;
        std::vector<double> trial(p);
        for (int k = 0; k < 30; ++k) {
            for (size_t f = 0; f < p; ++f) {
                trial[f] = beta[f] - t * step[f];
            }
            next = loss(trial);
            if (next <= current) {
                break;
            }
            t *= 0.5;
        }
        double moved = 0;
        for (size_t f = 0; f < p; ++f) {
            moved = std::max(moved, std::fabs(trial[f] - beta[f]));
        }
        beta = trial;
        current = next;
        if (moved < 1e-10) {
            break;
        }
    }
    m.weights.assign(beta.begin(), beta.begin() + static_cast<std::ptrdiff_t>(d));
    m.bias = beta[d];
    return m;
}

double auroc(const std::vector<double> &scores, const std::vector<int> &labels)
{
    const size_t n = std::min(scores.size(), labels.size());
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
    double rankSumPositive = 0;
    size_t positives = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && scores[order[j]] == scores[order[i]]) {
            ++j;
        }
        const double rank = 0.5 * static_cast<double>(i + 1 + j); // mean of ranks i+1 .. j
        for (size_t k = i; k < j; ++k) {
            if (labels[order[k]] == 1) {
                rankSumPositive += rank;
                ++positives;
            }
        }
        i = j;
    }
    const size_t negatives = n - positives;
    if (positives == 0 || negatives == 0) {
        return std::nan("");
    }
    const auto np = static_cast<double>(positives), nn = static_cast<double>(negatives);
    return (rankSumPositive - np * (np + 1) / 2) / (np * nn);
}

Result<DetectorReport> fitLookbackDetector(const ProbeRun &run, const DetectorOptions &options)
{
    DetectorReport r;
    r.features = options.sinkExcluded ? "lookback_no_sink" : "lookback";
    std::vector<const ProbeScore *> samples;
    for (const auto &s : run.scores) {
        if ((!options.groundedOnly || s.kind == ProbeKind::Grounded) && !s.lookback.ratio.empty()) {
            samples.push_back(&s);
        }
    }
    const auto right = std::count_if(samples.begin(), samples.end(), [](const ProbeScore *s) { return s->correct; });
    const auto wrong = static_cast<int64_t>(samples.size()) - right;
    if (right < 2 || wrong < 2) {
        return makeError(ErrorCode::InvalidArgument, "the Lookback detector needs at least two right and two wrong " +
                                                         std::string(options.groundedOnly ? "grounded " : "") +
                                                         "answers with Lookback ratios; the run has " +
                                                         std::to_string(right) + " right and " + std::to_string(wrong) +
                                                         " wrong");
    }
    const int every = std::max(options.testEvery, 2);
    std::vector<std::vector<double>> trainX, testX;
    std::vector<int> trainY, testY;
    int seen[2] = {0, 0};
    for (const ProbeScore *s : samples) {
        const FloatArray &f = options.sinkExcluded ? s->lookback.ratioNoSink : s->lookback.ratio;
        std::vector<double> x(f.data.begin(), f.data.end());
        const int y = s->correct ? 1 : 0;
        if (++seen[y] % every == 0) {
            testX.push_back(std::move(x));
            testY.push_back(y);
            r.testIds.push_back(s->id);
        } else {
            trainX.push_back(std::move(x));
            trainY.push_back(y);
        }
    }
    auto model = fitLogistic(trainX, trainY, options.l2);
    if (!model) {
        return model.error();
    }
    std::vector<double> trainScores;
    for (const auto &x : trainX) {
        trainScores.push_back(model->predict(x));
    }
    for (const auto &x : testX) {
        r.testScores.push_back(model->predict(x));
    }
    r.trainCount = static_cast<int>(trainX.size());
    r.testCount = static_cast<int>(testX.size());
    r.trainPositives = static_cast<int>(std::count(trainY.begin(), trainY.end(), 1));
    r.testPositives = static_cast<int>(std::count(testY.begin(), testY.end(), 1));
    r.trainAuroc = auroc(trainScores, trainY);
    r.testAuroc = auroc(r.testScores, testY);
    r.headWeights =
        FloatArray{{run.layers, run.heads}, std::vector<float>(model->weights.begin(), model->weights.end())};
    r.bias = model->bias;
    const int testNegatives = r.testCount - r.testPositives;
    std::ostringstream caveat;
    if (r.testPositives < options.minPerClass || testNegatives < options.minPerClass) {
        r.tooSmall = true;
        caveat << "too small to mean much: the held-out split has " << r.testPositives << " right and " << testNegatives
               << " wrong answers (fewer than " << options.minPerClass << " of a class)";
    }
    const auto features = static_cast<int64_t>(model->weights.size());
    if (features >= r.trainCount) {
        caveat << (caveat.tellp() > 0 ? "; " : "") << features << " features for " << r.trainCount
               << " training probes: the fit can memorise the training set, only the held-out AUROC counts";
    }
    r.caveat = caveat.str();
    return r;
}

std::string DetectorReport::toJson() const
{
    auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
    nlohmann::ordered_json j;
    j["features"] = features;
    j["train"] = {{"count", trainCount}, {"right", trainPositives}, {"auroc", num(trainAuroc)}};
    j["test"] = {{"count", testCount}, {"right", testPositives}, {"auroc", num(testAuroc)}, {"ids", testIds}};
    j["test"]["scores"] = testScores;
    j["too_small"] = tooSmall;
    j["caveat"] = caveat;
    j["bias"] = bias;
    auto rows = nlohmann::ordered_json::array();
    if (headWeights.shape.size() == 2) {
        for (int64_t l = 0; l < headWeights.shape[0]; ++l) {
            rows.push_back(std::vector<float>(headWeights.data.begin() + l * headWeights.shape[1],
                                              headWeights.data.begin() + (l + 1) * headWeights.shape[1]));
        }
    }
    j["head_weights"] = rows;
    return j.dump(2);
}

std::string DetectorReport::weightsCsv() const
{
    std::ostringstream out;
    out << std::setprecision(9) << "layer,head,weight\n";
    if (headWeights.shape.size() == 2) {
        for (int64_t l = 0; l < headWeights.shape[0]; ++l) {
            for (int64_t h = 0; h < headWeights.shape[1]; ++h) {
                out << l << "," << h << "," << headWeights.data[static_cast<size_t>(l * headWeights.shape[1] + h)]
                    << "\n";
            }
        }
    }
    return out.str();
}

} // namespace sinkscope
