#include "mitigation_controller.h"

#include "compute_bridge.h"

#include <algorithm>

namespace sinkscope::ui {

namespace {

// Progress of a sub-task mapped into [from, from + span) of the whole job, with a prefix on its label.
ProgressCallback scaled(const ProgressCallback &progress, double from, double span, const std::string &prefix)
{
    return [progress, from, span, prefix](double fraction, const std::string &label) {
        return !progress || progress(from + span * std::clamp(fraction, 0.0, 1.0), prefix + label);
    };
}

const QString kNone = QStringLiteral("none");

} // namespace

MitigationController::MitigationController(ComputeBridge *bridge, ModelGetter model, QObject *parent)
    : QObject(parent), m_bridge(bridge), m_getModel(std::move(model))
{
    // A job cancelled from the status bar ends without a result.
    connect(m_bridge, &ComputeBridge::busyChanged, this, [this](bool busy) {
        if (!busy && !m_pendingSpec.isEmpty()) {
            m_pendingSpec.clear();
            emit idle();
        }
    });
}

void MitigationController::setTokens(std::vector<int64_t> tokens)
{
    m_tokens = std::move(tokens);
    m_stale = !m_tokens.empty() && !tokensMatch();
}

QString MitigationController::canonicalSpec() const
{
    auto parsed = parseMitigation(m_spec.toStdString());
    return parsed.ok() ? QString::fromStdString(parsed->toString()) : QString();
}

QString MitigationController::specError() const
{
    if (m_spec.isEmpty()) {
        return tr("empty spec (use \u201cnone\u201d for the baseline)");
    }
    auto parsed = parseMitigation(m_spec.toStdString());
    if (!parsed.ok()) {
        return QString::fromStdString(parsed.error().message);
    }
    if (auto model = m_getModel()) {
        auto status = validateMitigation(*parsed, *model);
        if (!status.ok()) {
            return QString::fromStdString(status.error().message);
        }
    }
    return {};
}

bool MitigationController::tokensMatch() const
{
    return m_baseline && m_baseline->tokens == m_tokens && m_baselineModel == m_getModel().get();
}

void MitigationController::clearCaches()
{
    m_baseline.reset();
    m_baselineModel = nullptr;
    m_cache.clear();
    m_continuations.clear();
    m_shownSpec.clear();
    m_dormancy = {};
    m_dormancyMethod.clear();
}

std::shared_ptr<const MitigationEffects> MitigationController::shownEffects() const
{
    if (!m_enabled || m_shownSpec.isEmpty()) {
        return nullptr;
    }
    for (const auto &[spec, effects] : m_cache) {
        if (spec == m_shownSpec) {
            return effects;
        }
    }
    return nullptr;
}

QStringList MitigationController::cachedSpecs() const
{
    QStringList specs;
    for (const auto &entry : m_cache) {
        specs << entry.first;
    }
    return specs;
}

const std::vector<int64_t> *MitigationController::continuation(const QString &spec) const
{
    const auto it = m_continuations.constFind(spec);
    return it == m_continuations.constEnd() ? nullptr : &it.value();
}

void MitigationController::show(const QString &spec)
{
    m_shownSpec = spec;
    emit effectsShown();
    requestContinuations(spec.isEmpty() ? kNone : spec);
}

bool MitigationController::apply()
{
    auto model = m_getModel();
    if (!model || m_tokens.empty()) {
        emit status(tr("Run a prompt first."));
        return false;
    }
    if (const QString error = specError(); !error.isEmpty()) {
        emit status(tr("The spec cannot be applied: %1").arg(error));
        return false;
    }
    const QString spec = canonicalSpec();
    if (!tokensMatch()) {
        clearCaches();
    }
    m_stale = false;
    const bool none = spec == kNone;
    if (m_baseline) {
        if (none) {
            show({});
            return true;
        }
        for (auto it = m_cache.begin(); it != m_cache.end(); ++it) {
            if (it->first == spec) {
                m_cache.splice(m_cache.begin(), m_cache, it);
                show(spec);
                return true;
            }
        }
    }
    m_pendingSpec = spec;
    const bool maps = int64_t(m_tokens.size()) <= kMaxMapTokens;
    std::shared_ptr<const BaselineRun> baseline = m_baseline;
    const std::vector<int64_t> tokens = m_tokens;
    const std::string specText = spec.toStdString();
    m_bridge->submit<MitigationOutcome>(
        QString::fromLatin1(kEffectsTag), none ? tr("Running the baseline") : tr("Running %1").arg(spec),
        [model, tokens, baseline, specText, maps](const CancelToken &cancel,
                                                  const ProgressCallback &progress) -> Result<MitigationOutcome> {
            auto parsed = parseMitigation(specText);
            if (!parsed.ok()) {
                return parsed.error();
            }
            EffectsOptions options;
            options.continuationTokens = 0; // continuations follow in their own job
            options.attentionMaps = maps;
            MitigationOutcome out;
            out.baseline = baseline;
            out.model = model.get();
            const double split = baseline ? 0.0 : (parsed->isNone() ? 1.0 : 0.5);
            if (!baseline) {
                auto base = runBaseline(*model, tokens, options, &cancel, scaled(progress, 0, split, "baseline: "));
                if (!base.ok()) {
                    return base.error();
                }
                out.baseline = std::make_shared<const BaselineRun>(std::move(base).value());
            }
            if (!parsed->isNone()) {
                auto effects = compareMitigation(*model, *out.baseline, *parsed, options, &cancel,
                                                 scaled(progress, split, 1 - split, specText + ": "));
                if (!effects.ok()) {
                    return effects.error();
                }
                out.effects = std::make_shared<const MitigationEffects>(std::move(effects).value());
            }
            return out;
        },
        [this, spec](std::shared_ptr<const MitigationOutcome> outcome) { onOutcome(outcome, spec); });
    emit status(tr("Running %1 \u2026").arg(spec));
    return true;
}

void MitigationController::onOutcome(const std::shared_ptr<const MitigationOutcome> &outcome, const QString &spec)
{
    m_pendingSpec.clear();
    if (outcome->baseline->tokens != m_tokens || outcome->model != m_getModel().get()) {
        return; // the prompt or the model changed while it ran; the next apply() starts over
    }
    if (m_baseline != outcome->baseline) {
        m_cache.clear();
        m_continuations.clear();
        m_baseline = outcome->baseline;
        m_baselineModel = outcome->model;
    }
    if (!outcome->effects) {
        show({});
        return;
    }
    m_cache.remove_if([&](const auto &entry) { return entry.first == spec; });
    m_cache.emplace_front(spec, outcome->effects);
    while (int(m_cache.size()) > kCachedSpecs) {
        m_cache.pop_back();
    }
    show(spec);
}

void MitigationController::requestContinuations(const QString &spec)
{
    auto model = m_getModel();
    if (!model || !m_baseline) {
        return;
    }
    const bool needBase = !m_continuations.contains(kNone);
    const bool needMit = spec != kNone && !m_continuations.contains(spec);
    if (!needBase && !needMit) {
        emit continuationShown();
        return;
    }
    struct Continuations {
        std::vector<int64_t> baseline, mitigated;
    };
    const std::vector<int64_t> tokens = m_baseline->tokens;
    const std::string specText = spec.toStdString();
    m_bridge->submit<Continuations>(
        QString::fromLatin1(kContinuationTag), tr("Greedy continuations"),
        [model, tokens, specText, needBase, needMit](const CancelToken &cancel,
                                                     const ProgressCallback &progress) -> Result<Continuations> {
            Continuations out;
            if (needBase) {
                GenerateOptions options;
                options.maxNewTokens = kContinuationTokens;
                auto ids = model->generate(tokens, options, {}, &cancel);
                if (!ids.ok()) {
                    return ids.error();
                }
                out.baseline = std::move(ids).value();
            }
            if (needMit) {
                auto parsed = parseMitigation(specText);
                if (!parsed.ok()) {
                    return parsed.error();
                }
                // The controls cover every position, so each token reruns the whole sequence.
                std::vector<int64_t> seq = tokens;
                for (int i = 0; i < kContinuationTokens; ++i) {
                    if (progress && !progress(double(i) / kContinuationTokens, "continuation with " + specText)) {
                        return makeError(ErrorCode::Cancelled, "continuation cancelled");
                    }
                    auto next = greedyContinuation(*model, seq, *parsed, 1, &cancel);
                    if (!next.ok()) {
                        return next.error();
                    }
                    if (next->empty()) {
                        break;
                    }
                    out.mitigated.push_back(next->front());
                    seq.push_back(next->front());
                    auto tok = model->tokenizer();
                    if (tok && tok->data().eosId && next->front() == *tok->data().eosId) {
                        break;
                    }
                }
            }
            return out;
        },
        [this, tokens, spec, needBase, needMit](std::shared_ptr<const Continuations> result) {
            if (!m_baseline || m_baseline->tokens != tokens) {
                return;
            }
            if (needBase) {
                m_continuations.insert(kNone, result->baseline);
            }
            if (needMit) {
                m_continuations.insert(spec, result->mitigated);
            }
            emit continuationShown();
        });
}

bool MitigationController::runDormancy(MitigationMethod method)
{
    auto model = m_getModel();
    if (!model || m_tokens.size() < 2) {
        emit status(tr("The dormancy test needs a model and a prompt of at least two tokens."));
        return false;
    }
    const std::vector<int64_t> tokens = m_tokens;
    const QString name = QString::fromLatin1(mitigationMethodName(method));
    m_bridge->submit<FloatArray>(
        QString::fromLatin1(kDormancyTag), tr("Dormancy test (%1)").arg(name),
        [model, tokens, method](const CancelToken &cancel, const ProgressCallback &progress) -> Result<FloatArray> {
            return headLossChanges(*model, tokens, method, &cancel, progress);
        },
        [this, tokens, name](std::shared_ptr<const FloatArray> result) {
            if (tokens != m_tokens) {
                return;
            }
            m_dormancy = *result;
            m_dormancyMethod = name;
            emit dormancyShown();
        });
    return true;
}

void MitigationController::setEnabled(bool on, bool showNow)
{
    m_enabled = on;
    if (!showNow) {
        return;
    }
    if (!on) {
        emit effectsShown();
        return;
    }
    // Show the cached run of the current spec at once, or run it.
    const QString spec = canonicalSpec();
    const bool cached = std::any_of(m_cache.begin(), m_cache.end(), [&](const auto &e) { return e.first == spec; });
    if (cached && tokensMatch()) {
        m_shownSpec = spec;
        emit effectsShown();
        return;
    }
    if (!m_tokens.empty()) {
        apply();
    }
}

} // namespace sinkscope::ui
