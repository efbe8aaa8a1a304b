#include "token_chips.h"

#include <cmath>
#include <limits>

#include <QPainter>
#include <QPainterPath>

#include <algorithm>
#include <cmath>

namespace sinkscope::ui {

namespace {
QString hexByte(unsigned char c)
{
    return QStringLiteral("<0x%1>").arg(QString::number(c, 16).toUpper().rightJustified(2, QLatin1Char('0')));
}
} // namespace

QString displayTokenText(const std::string &bytes)
{
    QString out;
    size_t i = 0;
    while (i < bytes.size()) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        int length = 0;
        if (c < 0x80) {
            length = 1;
        } else if ((c & 0xe0) == 0xc0) {
            length = 2;
        } else if ((c & 0xf0) == 0xe0) {
            length = 3;
        } else if ((c & 0xf8) == 0xf0) {
            length = 4;
        }
        bool valid = length > 0 && i + size_t(length) <= bytes.size();
        for (int k = 1; valid && k < length; ++k) {
            valid = (static_cast<unsigned char>(bytes[i + size_t(k)]) & 0xc0) == 0x80;
        }
        if (!valid) {
            out += hexByte(c);
            ++i;
            continue;
        }
        if (length == 1) {
            if (c == ' ') {
                out += QChar(0x00b7);
            } else if (c == '\n') {
                out += QChar(0x21b5);
            } else if (c == '\t') {
                out += QChar(0x2192);
            } else if (c == '\r') {
                out += QStringLiteral("\\r");
            } else if (c < 0x20 || c == 0x7f) {
                out += hexByte(c);
            } else {
                out += QChar(c);
            }
        } else {
            out += QString::fromUtf8(bytes.data() + i, length);
        }
        i += size_t(length);
    }
    return out;
}

QString abbreviate(const QString &text, int maxChars)
{
    if (text.size() <= maxChars || maxChars < 2) {
        return text;
    }
    return text.left(maxChars - 1) + QChar(0x2026);
}

void TokenChipModel::setTokens(std::vector<TokenInfo> tokens)
{
    beginResetModel();
    m_tokens = std::move(tokens);
    m_weights.clear();
    m_sinkScores.clear();
    endResetModel();
}

void TokenChipModel::setSinks(const std::vector<std::pair<int64_t, float>> &sinks, double threshold)
{
    m_sinkScores.assign(m_tokens.size(), std::numeric_limits<float>::quiet_NaN());
    m_sinkThreshold = threshold;
    bool any = false;
    for (const auto &[position, score] : sinks) {
        if (position >= 0 && position < static_cast<int64_t>(m_tokens.size())) {
            m_sinkScores[size_t(position)] = score;
            any = true;
        }
    }
    if (!any) {
        m_sinkScores.clear();
    }
    if (!m_tokens.empty()) {
        emit dataChanged(index(0), index(rowCount() - 1), {SinkRole, Qt::ToolTipRole});
    }
}

bool TokenChipModel::isSink(int row) const
{
    return row >= 0 && size_t(row) < m_sinkScores.size() && !std::isnan(m_sinkScores[size_t(row)]);
}

void TokenChipModel::setWeights(std::vector<float> weights)
{
    if (!weights.empty() && weights.size() != m_tokens.size()) {
        weights.clear();
    }
    m_weights = std::move(weights);
    if (!m_tokens.empty()) {
        emit dataChanged(index(0), index(rowCount() - 1), {WeightRole});
    }
}

int TokenChipModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : static_cast<int>(m_tokens.size());
}

QVariant TokenChipModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) {
        return {};
    }
    const TokenInfo &t = m_tokens[size_t(index.row())];
    switch (role) {
    case Qt::DisplayRole:
        return displayTokenText(t.text);
    case Qt::ToolTipRole: {
        QString tip = tr("#%1  id %2").arg(index.row()).arg(t.id);
        tip += QStringLiteral("\n") + tr("piece: %1").arg(QString::fromStdString(t.piece));
        if (t.bos) {
            tip += QStringLiteral("\n") + tr("BOS (beginning of sequence)");
        } else if (t.special) {
            tip += QStringLiteral("\n") + tr("special token");
        }
        if (!m_weights.empty()) {
            tip += QStringLiteral("\n") +
                   tr("attention received: %1").arg(double(m_weights[size_t(index.row())]), 0, 'g', 4);
        }
        if (isSink(index.row())) {
            tip += QStringLiteral("\n") + tr("detected sink: peak score %1 (threshold %2)")
                                              .arg(double(m_sinkScores[size_t(index.row())]), 0, 'g', 3)
                                              .arg(m_sinkThreshold);
        }
        return tip;
    }
    case IdRole:
        return QVariant::fromValue<qint64>(t.id);
    case SpecialRole:
        return t.special;
    case BosRole:
        return t.bos;
    case PieceRole:
        return QString::fromStdString(t.piece);
    case WeightRole:
        return m_weights.empty() ? QVariant() : QVariant(double(m_weights[size_t(index.row())]));
    case SinkRole:
        return isSink(index.row()) ? QVariant(double(m_sinkScores[size_t(index.row())])) : QVariant();
    default:
        return {};
    }
}

namespace {
constexpr int kPadX = 6;
constexpr int kPadY = 3;
constexpr int kMargin = 2;
} // namespace

QSize TokenChipDelegate::sizeHint(const QStyleOptionViewItem &option, const QModelIndex &index) const
{
    const QFontMetrics fm(option.font);
    const QString text = abbreviate(index.data(Qt::DisplayRole).toString(), 24);
    return {fm.horizontalAdvance(text) + 2 * kPadX + 2 * kMargin, fm.height() + 2 * kPadY + 2 * kMargin};
}

void TokenChipDelegate::paint(QPainter *painter, const QStyleOptionViewItem &option, const QModelIndex &index) const
{
    painter->save();
    painter->setRenderHint(QPainter::Antialiasing);
    const QRectF r = QRectF(option.rect).adjusted(kMargin, kMargin, -kMargin, -kMargin);
    const bool special = index.data(TokenChipModel::SpecialRole).toBool();
    const bool bos = index.data(TokenChipModel::BosRole).toBool();
    const QVariant weight = index.data(TokenChipModel::WeightRole);
    const QPalette &pal = option.palette;
    QColor fill = pal.color(QPalette::AlternateBase);
    if (weight.isValid()) {
        // Emphasis by attention received: blend towards the highlight colour.
        const double w = std::sqrt(std::clamp(weight.toDouble(), 0.0, 1.0));
        const QColor h = pal.color(QPalette::Highlight);
        fill = QColor::fromRgbF(float(fill.redF() + (h.redF() - fill.redF()) * w),
                                float(fill.greenF() + (h.greenF() - fill.greenF()) * w),
                                float(fill.blueF() + (h.blueF() - fill.blueF()) * w));
    }
    if (bos) {
        fill = QColor(0xe6, 0x9f, 0x00); // Okabe-Ito orange: distinct for every colour vision
    }
    if (option.state & QStyle::State_Selected) {
        fill = pal.color(QPalette::Highlight);
    }
    QPen pen(special ? QColor(0xe6, 0x9f, 0x00) : pal.color(QPalette::Mid), special ? 1.6 : 1.0);
    if (special && !bos) {
        pen.setStyle(Qt::DashLine);
    }
    painter->setPen(pen);
    painter->setBrush(fill);
    painter->drawRoundedRect(r, 5, 5);
    painter->setPen(bos ? QColor(Qt::black) : pal.color(QPalette::Text));
    QFont font = option.font;
    font.setBold(special);
    painter->setFont(font);
    painter->drawText(r, Qt::AlignCenter, abbreviate(index.data(Qt::DisplayRole).toString(), 24));
    if (index.data(TokenChipModel::SinkRole).isValid()) {
        // Okabe-Ito vermilion: apart from the BOS orange and the highlight blue.
        const QColor sink(0xd5, 0x5e, 0x00);
        const qreal bar = std::max<qreal>(2.5, r.height() * 0.14);
        painter->setPen(Qt::NoPen);
        painter->setBrush(sink);
        painter->drawRoundedRect(QRectF(r.left() + 3, r.bottom() - bar, r.width() - 6, bar), bar / 2, bar / 2);
        const qreal d = std::max<qreal>(5, r.height() * 0.3);
        painter->drawEllipse(QRectF(r.right() - d - 1, r.top() + 1, d, d));
    }
    painter->restore();
}

} // namespace sinkscope::ui
