// Token chips: the prompt as the model sees it, one chip per token id. The model is the adaptor the
// tests drive; the delegate only paints.
#pragma once

#include "run_snapshot.h"

#include <QAbstractListModel>
#include <QStyledItemDelegate>

namespace sinkscope::ui {

// Printable form of a token's bytes: whitespace made visible (space ·, newline ↵, tab →), control
// bytes and partial UTF-8 sequences as <0xNN>.
QString displayTokenText(const std::string &bytes);
// At most maxChars characters; longer text ends in "…".
QString abbreviate(const QString &text, int maxChars);

class TokenChipModel : public QAbstractListModel
{
    Q_OBJECT
public:
    enum Role {
        IdRole = Qt::UserRole + 1, // qint64
        SpecialRole,               // bool
        BosRole,                   // bool
        PieceRole,                 // QString: raw vocabulary entry
        WeightRole,                // double in [0, 1] or invalid: optional emphasis (attention received)
        SinkRole,                  // double: the detected sink's peak score, or invalid when not a sink
    };
    using QAbstractListModel::QAbstractListModel;

    void setTokens(std::vector<TokenInfo> tokens);
    // Per-token emphasis (same length as the tokens) or empty to clear.
    void setWeights(std::vector<float> weights);
    // Detected sink tokens (SinkMetrics::sinks: position and peak score; the threshold for the
    // tooltip); positions outside the tokens are ignored. setTokens() clears them.
    void setSinks(const std::vector<std::pair<int64_t, float>> &sinks, double threshold);
    bool isSink(int row) const;
    const std::vector<TokenInfo> &tokens() const { return m_tokens; }

    int rowCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;

private:
    std::vector<TokenInfo> m_tokens;
    std::vector<float> m_weights;
    std::vector<float> m_sinkScores; // per token, NaN when not a sink; empty when none are marked
    double m_sinkThreshold = 0;
};

// Rounded chips; specials get a dashed amber outline, BOS a filled badge and detected sinks a thick
// vermilion underline with an anchor mark.
class TokenChipDelegate : public QStyledItemDelegate
{
    Q_OBJECT
public:
    using QStyledItemDelegate::QStyledItemDelegate;
    void paint(QPainter *painter, const QStyleOptionViewItem &option, const QModelIndex &index) const override;
    QSize sizeHint(const QStyleOptionViewItem &option, const QModelIndex &index) const override;
};

} // namespace sinkscope::ui
