// The Mitigations tab's work without its widgets: the spec, the baseline and the recent mitigated runs
// of the current prompt (an LRU cache), greedy continuations and the dormancy test, each run on the
// compute thread through the ComputeBridge. MitigationView draws what it holds; tests drive it without
// a window (tests/ui/mitigation_controller_test.cpp).
#pragma once

#include "sinkscope/interventions/effects.h"
#include "sinkscope/interventions/mitigation.h"

#include <QHash>
#include <QObject>
#include <QString>

#include <functional>
#include <list>
#include <memory>
#include <vector>

namespace sinkscope::ui {

class ComputeBridge;

// What one mitigation job delivers.
struct MitigationOutcome {
    std::shared_ptr<const BaselineRun> baseline;
    std::shared_ptr<const MitigationEffects> effects; // null for "none"
    const Model *model = nullptr;                     // identity only: caches belong to one model
};

class MitigationController : public QObject
{
    Q_OBJECT
public:
    using ModelGetter = std::function<std::shared_ptr<const Model>()>;

    static constexpr const char *kEffectsTag = "mitigation";
    static constexpr const char *kContinuationTag = "mitigation-continuation";
    static constexpr const char *kDormancyTag = "dormancy";
    // Prompts longer than this are compared on outputs only: a full [L, H, T, T] difference would not fit.
    static constexpr int64_t kMaxMapTokens = 1024;
    static constexpr int kContinuationTokens = 12;
    static constexpr int kCachedSpecs = 4;

    MitigationController(ComputeBridge *bridge, ModelGetter model, QObject *parent = nullptr);

    // The prompt the comparisons run on (the window's current run). Cached results belong to one token
    // sequence and one model; stale() says the shown result is of an earlier prompt.
    void setTokens(std::vector<int64_t> tokens);
    const std::vector<int64_t> &tokens() const { return m_tokens; }
    bool stale() const { return m_stale; }
    void markStale() { m_stale = !m_tokens.empty(); } // a restored spec applies to the next comparison

    // The spec as typed; specError() is the parser's or the model's objection (empty when it can run).
    void setSpec(const QString &spec) { m_spec = spec.trimmed(); }
    QString spec() const { return m_spec; }
    QString canonicalSpec() const; // empty while invalid
    QString specError() const;

    // Runs the spec on the tokens (the baseline first when there is none for them), or shows its cached
    // result at once. Returns false, and says why through status(), when it cannot run.
    bool apply();
    // Off: nothing mitigated is shown (the baseline alone); on: the current spec's run, cached or run now.
    // showNow false only remembers the setting (a restored session shows it on the next apply()).
    void setEnabled(bool on, bool showNow = true);
    bool enabled() const { return m_enabled; }
    // I8 dormancy test over every head (head-zero or move-to-bos). False (and status()) when it cannot run.
    bool runDormancy(MitigationMethod method);

    std::shared_ptr<const Model> model() const { return m_getModel(); } // the window's current model
    std::shared_ptr<const BaselineRun> baseline() const { return m_baseline; }
    std::shared_ptr<const MitigationEffects> shownEffects() const; // null when off or "none"
    QStringList cachedSpecs() const;                               // canonical, most recent first
    // Greedy continuation of the baseline ("none") or of a canonical spec; null until computed.
    const std::vector<int64_t> *continuation(const QString &spec) const;
    const FloatArray &dormancy() const { return m_dormancy; } // [L, H] loss change; empty until run
    QString dormancyMethod() const { return m_dormancyMethod; }

signals:
    void effectsShown(); // a new baseline/mitigated pair (or the baseline alone) is to be shown
    void continuationShown();
    void dormancyShown();
    void status(const QString &message); // a job was submitted, or why it could not be
    void idle();                         // a mitigation job ended without a result (cancelled, failed)

private:
    bool tokensMatch() const;
    void clearCaches();
    void show(const QString &spec); // "" shows the baseline alone
    void onOutcome(const std::shared_ptr<const MitigationOutcome> &outcome, const QString &spec);
    void requestContinuations(const QString &spec);

    ComputeBridge *m_bridge = nullptr;
    ModelGetter m_getModel;
    std::vector<int64_t> m_tokens;
    QString m_spec = QStringLiteral("none");
    bool m_enabled = true;
    bool m_stale = false; // the tokens changed since the shown result
    std::shared_ptr<const BaselineRun> m_baseline;
    const Model *m_baselineModel = nullptr; // the model m_baseline (and every cache) was computed with
    // Most recent first; every entry belongs to m_baseline's tokens.
    std::list<std::pair<QString, std::shared_ptr<const MitigationEffects>>> m_cache;
    QString m_shownSpec;                                  // canonical spec of the shown mitigated run ("" when none)
    QString m_pendingSpec;                                // spec of the job in flight
    QHash<QString, std::vector<int64_t>> m_continuations; // canonical spec ("none" = baseline) -> ids
    FloatArray m_dormancy;
    QString m_dormancyMethod;
};

} // namespace sinkscope::ui
