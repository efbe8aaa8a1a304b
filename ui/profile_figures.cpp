#include "profile_figures.h"

#include "figures.h"
#include "heatmap_plot.h"

#include <qcustomplot.h>

#include <QDir>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace sinkscope::ui {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Profile figures are read on paper and slides: larger type than the window's 9 pt.
PlotStyle figureStyle()
{
    PlotStyle style = plotStyle(Theme::Light, false);
    style.font.setPointSizeF(11);
    style.titleFont.setPointSizeF(12);
    style.lineWidth = 1.2;
    return style;
}

void styleAxis(QCPAxis *axis, const PlotStyle &style)
{
    applyAxisStyle(axis, style);
    axis->grid()->setPen(QPen(style.grid, 1, Qt::DotLine));
    axis->grid()->setZeroLinePen(QPen(style.grid, 1, Qt::DotLine));
}

// A tick step of 1, 2 or 5 times a power of ten giving at most `maxTicks` ticks over `span`.
double niceStep(double span, int maxTicks)
{
    const double raw = std::max(1.0, span / std::max(1, maxTicks));
    const double power = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0, 10.0}) {
        if (m * power >= raw) {
            return m * power;
        }
    }
    return 10.0 * power;
}

void setLogAxis(QCPAxis *axis)
{
    axis->setScaleType(QCPAxis::stLogarithmic);
    QSharedPointer<QCPAxisTickerLog> ticker(new QCPAxisTickerLog);
    ticker->setLogBase(10);
    ticker->setSubTickCount(8);
    axis->setTicker(ticker);
    axis->setNumberFormat(QStringLiteral("gb"));
}

struct Extent {
    double lo = std::numeric_limits<double>::infinity();
    double hi = -std::numeric_limits<double>::infinity();
    void add(double v, bool positiveOnly)
    {
        if (std::isfinite(v) && (!positiveOnly || v > 0)) {
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    }
    bool valid() const { return lo <= hi; }
};

QString formatStat(const ProfileStat &s, int decimals)
{
    if (s.n == 0 || !std::isfinite(s.mean)) {
        return QStringLiteral("\u2013");
    }
    QString text = QString::number(s.mean, 'f', decimals);
    if (std::isfinite(s.low) && std::isfinite(s.high)) {
        text += QStringLiteral(" [%1, %2]").arg(s.low, 0, 'f', decimals).arg(s.high, 0, 'f', decimals);
    }
    return text;
}

QString joinNames(const std::vector<QString> &names)
{
    QStringList list;
    for (const QString &n : names) {
        list << n;
    }
    return list.join(QStringLiteral(", "));
}

} // namespace

void renderBandPlot(QCPPainter *painter, const QSize &size, const BandPlot &spec, const PlotStyle &style)
{
    QCustomPlot figure;
    figure.resize(size);
    figure.setBackground(style.background);
    figure.plotLayout()->clear();
    auto *panels = new QCPLayoutGrid;
    figure.plotLayout()->addElement(0, 0, panels);
    panels->setColumnSpacing(18);
    auto *margins = new QCPMarginGroup(&figure);

    Extent x, y;
    for (const BandPanel &panel : spec.panels) {
        for (const BandSeries &s : panel.series) {
            for (size_t i = 0; i < s.x.size(); ++i) {
                x.add(s.x[i], spec.logX);
                if (!std::isfinite(s.x[i]) || (spec.logX && s.x[i] <= 0)) {
                    continue;
                }
                for (const std::vector<double> *v : {&s.mean, &s.low, &s.high}) {
                    if (i < v->size()) {
                        y.add((*v)[i], spec.logY);
                    }
                }
            }
        }
    }
    double yLo = y.valid() ? y.lo : (spec.logY ? 1.0 : 0.0);
    double yHi = y.valid() ? y.hi : yLo + 1.0;
    if (spec.logY) {
        yLo /= 1.6;
        yHi *= 1.6;
    } else {
        const double pad = 0.05 * std::max(1e-9, yHi - yLo);
        yLo = std::isfinite(spec.yMin) ? spec.yMin : std::min(0.0, yLo - pad);
        yHi = std::isfinite(spec.yMax) ? spec.yMax : yHi + pad;
        if (yHi <= yLo) {
            yHi = yLo + 1.0;
        }
    }
    double xLo = x.valid() ? x.lo : 0.0, xHi = x.valid() ? x.hi : 1.0;
    if (spec.logX) {
        xLo /= 1.3;
        xHi *= 1.3;
    } else {
        const double pad = spec.integerX ? 0.5 : 0.03 * std::max(1e-9, xHi - xLo);
        xLo -= pad;
        xHi += pad;
    }

    // The legend centred below the panels, between two stretching spacers (added to the layout first:
    // items need the legend's plot).
    auto *legendRow = new QCPLayoutGrid;
    figure.plotLayout()->addElement(1, 0, legendRow);
    auto *legend = new QCPLegend;
    legendRow->addElement(0, 0, new QCPTextElement(&figure, QString()));
    legendRow->addElement(0, 1, legend);
    legendRow->addElement(0, 2, new QCPTextElement(&figure, QString()));
    legendRow->setColumnStretchFactors({1.0, 0.001, 1.0});
    legend->setLayer(QStringLiteral("legend"));
    std::set<QString> inLegend;
    QFont panelTitleFont = style.titleFont;
    panelTitleFont.setBold(true);
    const int columns = std::max<int>(1, int(spec.panels.size()));
    for (int p = 0; p < columns; ++p) {
        const BandPanel *panel = p < int(spec.panels.size()) ? &spec.panels[size_t(p)] : nullptr;
        auto *title = new QCPTextElement(&figure, panel ? panel->title : QString(), panelTitleFont);
        title->setTextColor(style.foreground);
        panels->addElement(0, p, title);
        auto *rect = new QCPAxisRect(&figure, true);
        panels->addElement(1, p, rect);
        rect->setBackground(style.background);
        rect->setMarginGroup(QCP::msTop | QCP::msBottom, margins);
        QCPAxis *xAxis = rect->axis(QCPAxis::atBottom);
        QCPAxis *yAxis = rect->axis(QCPAxis::atLeft);
        for (QCPAxis *axis : {xAxis, yAxis, rect->axis(QCPAxis::atTop), rect->axis(QCPAxis::atRight)}) {
            styleAxis(axis, style);
        }
        for (QCPAxis *axis : {rect->axis(QCPAxis::atTop), rect->axis(QCPAxis::atRight)}) {
            axis->setVisible(false);
            axis->grid()->setVisible(false);
        }
        xAxis->setLabel(spec.xLabel);
        if (p == 0) {
            yAxis->setLabel(spec.yLabel);
        }
        if (spec.logX) {
            setLogAxis(xAxis);
        } else if (spec.integerX) {
            QSharedPointer<QCPAxisTickerFixed> ticker(new QCPAxisTickerFixed);
            ticker->setTickStep(niceStep(xHi - xLo, columns > 2 ? 6 : 10));
            ticker->setScaleStrategy(QCPAxisTickerFixed::ssNone);
            xAxis->setTicker(ticker);
            xAxis->setSubTicks(false);
        } else {
            xAxis->ticker()->setTickCount(columns > 2 ? 4 : 6);
        }
        if (spec.logY) {
            setLogAxis(yAxis);
        }
        xAxis->setRange(xLo, xHi);
        yAxis->setRange(yLo, yHi);
        rect->axis(QCPAxis::atTop)->setRange(xAxis->range());
        rect->axis(QCPAxis::atRight)->setRange(yAxis->range());
        if (!panel) {
            continue;
        }
        for (const BandSeries &s : panel->series) {
            QVector<double> xs, mean, low, high;
            bool band = false;
            for (size_t i = 0; i < s.x.size(); ++i) {
                if (!std::isfinite(s.x[i]) || (spec.logX && s.x[i] <= 0)) {
                    continue;
                }
                auto at = [&](const std::vector<double> &v) {
                    const double value = i < v.size() ? v[i] : kNaN;
                    return std::isfinite(value) && (!spec.logY || value > 0) ? value : kNaN;
                };
                xs << s.x[i];
                mean << at(s.mean);
                low << at(s.low);
                high << at(s.high);
                band |= std::isfinite(low.back()) && std::isfinite(high.back());
            }
            if (band) {
                QCPGraph *lower = figure.addGraph(xAxis, yAxis);
                lower->setData(xs, low, true);
                lower->setPen(Qt::NoPen);
                QCPGraph *upper = figure.addGraph(xAxis, yAxis);
                upper->setData(xs, high, true);
                upper->setPen(Qt::NoPen);
                QColor fill = s.colour;
                fill.setAlpha(55);
                upper->setBrush(fill);
                upper->setChannelFillGraph(lower);
                lower->removeFromLegend();
                upper->removeFromLegend();
            }
            QCPGraph *line = figure.addGraph(xAxis, yAxis);
            line->setName(s.name);
            line->setData(xs, mean, true);
            line->setPen(QPen(s.colour, 2.2 * style.lineWidth));
            if (xs.size() <= 40) {
                line->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, s.colour, s.colour, 5));
            }
            line->removeFromLegend();
            if (inLegend.insert(s.name).second) {
                line->addToLegend(legend);
            }
        }
    }
    if (legend->itemCount() > 0) {
        legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
        legend->setWrap(std::clamp(legend->itemCount(), 1, 5));
        legend->setFont(style.font);
        legend->setTextColor(style.foreground);
        legend->setBrush(style.background);
        legend->setBorderPen(Qt::NoPen);
        legend->setIconSize(36, 14);
        legend->setColumnSpacing(24);
        figure.plotLayout()->setRowStretchFactor(1, 0.001);
        figure.plotLayout()->setRowSpacing(4);
    } else {
        figure.plotLayout()->remove(legendRow);
        figure.plotLayout()->simplify();
    }
    figure.toPainter(painter, size.width(), size.height());
}

void renderTextTable(QCPPainter *painter, const QSize &size, const TextTable &table, const PlotStyle &style)
{
    const int columns = int(table.columns.size()) + 1;
    const int rows = int(table.rows.size()) + 1;
    QFont font = style.font;
    font.setPointSizeF(font.pointSizeF() * 1.15);
    QFont bold = font;
    bold.setBold(true);
    QFont small = font;
    small.setPointSizeF(font.pointSizeF() * 0.85);
    auto textAt = [&](int r, int c, bool detail) -> QString {
        if (r == 0) {
            return detail ? QString() : (c == 0 ? table.corner : table.columns[c - 1]);
        }
        if (c == 0) {
            return detail ? QString() : table.rows[r - 1];
        }
        const auto &source = detail ? table.details : table.cells;
        if (size_t(r - 1) < source.size() && size_t(c - 1) < source[size_t(r - 1)].size()) {
            return source[size_t(r - 1)][size_t(c - 1)];
        }
        return {};
    };
    // Shrink the type until the table fits the width (a table of many data sets).
    std::vector<double> widths(size_t(columns), 0.0);
    double rowHeight = 0, totalWidth = 0;
    const double padX = 14, padY = 8;
    for (int attempt = 0; attempt < 8; ++attempt) {
        const QFontMetricsF main(font, painter->device()), head(bold, painter->device()),
            detail(small, painter->device());
        std::fill(widths.begin(), widths.end(), 0.0);
        for (int r = 0; r < rows; ++r) {
            for (int c = 0; c < columns; ++c) {
                const QFontMetricsF &m = (r == 0 || c == 0) ? head : main;
                widths[size_t(c)] = std::max({widths[size_t(c)], m.horizontalAdvance(textAt(r, c, false)),
                                              detail.horizontalAdvance(textAt(r, c, true))});
            }
        }
        rowHeight = main.height() + (table.details.empty() ? 0 : detail.height()) + 2 * padY;
        totalWidth = 0;
        for (double &w : widths) {
            w += 2 * padX;
            totalWidth += w;
        }
        if (totalWidth <= size.width() && rowHeight * rows <= size.height()) {
            break;
        }
        for (QFont *f : {&font, &bold, &small}) {
            f->setPointSizeF(f->pointSizeF() * 0.88);
        }
    }
    const double left = std::max(0.0, (size.width() - totalWidth) / 2);
    const double top = std::max(0.0, (size.height() - rowHeight * rows) / 3);
    const QFontMetricsF main(font, painter->device());
    painter->save();
    painter->setRenderHint(QPainter::Antialiasing, false);
    for (int r = 0; r < rows; ++r) {
        const double y = top + r * rowHeight;
        if (r > 0 && r % 2 == 0) {
            painter->fillRect(QRectF(left, y, totalWidth, rowHeight), QColor(0xf3, 0xf5, 0xf8));
        }
        double x = left;
        for (int c = 0; c < columns; ++c) {
            const double w = widths[size_t(c)];
            const Qt::Alignment align = (c == 0 ? Qt::AlignLeft : Qt::AlignHCenter) | Qt::AlignTop;
            painter->setPen(style.foreground);
            painter->setFont(r == 0 || c == 0 ? bold : font);
            painter->drawText(QRectF(x + padX, y + padY, w - 2 * padX, main.height()), align, textAt(r, c, false));
            const QString detail = textAt(r, c, true);
            if (!detail.isEmpty()) {
                painter->setFont(small);
                painter->setPen(QColor(0x60, 0x60, 0x60));
                painter->drawText(QRectF(x + padX, y + padY + main.height(), w - 2 * padX, rowHeight - main.height()),
                                  align, detail);
            }
            x += w;
        }
    }
    // Rules as in a printed table: above and below the header, below the last row, after the first column.
    painter->setPen(QPen(style.foreground, 1.5));
    painter->drawLine(QPointF(left, top), QPointF(left + totalWidth, top));
    painter->drawLine(QPointF(left, top + rows * rowHeight), QPointF(left + totalWidth, top + rows * rowHeight));
    painter->setPen(QPen(style.foreground, 1.0));
    painter->drawLine(QPointF(left, top + rowHeight), QPointF(left + totalWidth, top + rowHeight));
    painter->setPen(QPen(style.grid, 1.0));
    painter->drawLine(QPointF(left + widths[0], top), QPointF(left + widths[0], top + rows * rowHeight));
    painter->restore();
}

const std::vector<std::string> &profileLayerFigureMetrics()
{
    static const std::vector<std::string> metrics = {"first_token_mass", "sink_1", "massive_top1"};
    return metrics;
}

QString profileFileStem(const std::string &name)
{
    QString out;
    for (const QChar c : QString::fromStdString(name)) {
        const bool safe = (c.isLetterOrNumber() && c.unicode() < 128) || c == QLatin1Char('.') ||
                          c == QLatin1Char('_') || c == QLatin1Char('-');
        out += safe ? c : QLatin1Char('_');
    }
    while (out.endsWith(QLatin1Char('_'))) {
        out.chop(1);
    }
    while (out.startsWith(QLatin1Char('.')) || out.startsWith(QLatin1Char('_'))) {
        out.remove(0, 1);
    }
    return out.isEmpty() ? QStringLiteral("x") : out;
}

QString profileCaption(const Profile &profile)
{
    const ProfileSettings &s = profile.settings;
    std::vector<QString> models, data;
    for (const ProfileModel &m : profile.models) {
        QString text = QString::fromStdString(m.key);
        if (!m.name.empty() && m.name != m.key) {
            text += QStringLiteral(" (%1)").arg(QString::fromStdString(m.name));
        }
        models.push_back(text);
    }
    for (const ProfileDataSet &d : profile.data) {
        data.push_back(QString::fromStdString(d.name));
    }
    int64_t nLo = -1, nHi = -1;
    for (const ProfileCell &cell : profile.cells) {
        const auto n = static_cast<int64_t>(cell.samples.size());
        nLo = nLo < 0 ? n : std::min(nLo, n);
        nHi = std::max(nHi, n);
    }
    const QString n = nLo == nHi ? QString::number(nLo) : QStringLiteral("%1\u2013%2").arg(nLo).arg(nHi);
    const QString bos = !s.bos ? QObject::tr("BOS as the tokenizer adds it, none for random and repeated")
                               : (*s.bos ? QObject::tr("BOS first") : QObject::tr("no BOS"));
    const QString bootstrap =
        s.bootstrap > 0 ? QObject::tr("Bands and intervals: %1% percentile bootstrap over samples, %2 resamples")
                              .arg(s.confidence * 100.0, 0, 'g', 3)
                              .arg(s.bootstrap)
                        : QObject::tr("No intervals (bootstrap 0)");
    QString text =
        QObject::tr("Models: %1. Data: %2. n = %3 samples per model and data set of T = %4 tokens "
                    "(seed %5; %6). Sink\u2081: share of heads with \u03b1\u2081 > \u03b5, \u03b5 = %7 (Gu et al.). "
                    "%8.")
            .arg(joinNames(models), joinNames(data), n)
            .arg(s.tokens)
            .arg(s.seed)
            .arg(bos)
            .arg(s.epsilon, 0, 'g', 3)
            .arg(bootstrap);
    if (profile.shard.sharded()) {
        text += QObject::tr(" Shard %1/%2 of the samples.").arg(profile.shard.index).arg(profile.shard.count);
    }
    if (!profile.complete) {
        text += QObject::tr(" Incomplete: interrupted before every sample ran.");
    }
    return text;
}

namespace {

struct CellView {
    const ProfileCell *cell = nullptr;
    const ProfileModel *model = nullptr;
    const std::vector<ProfileStat> *stats = nullptr;

    const ProfileStat *stat(const std::string &block, int64_t i) const
    {
        const ProfileBlock *b = cell->layout.block(block);
        if (!b || i < 0 || i >= b->size || size_t(b->offset + i) >= stats->size()) {
            return nullptr;
        }
        return &(*stats)[size_t(b->offset + i)];
    }
};

struct LayerFigureSpec {
    QString title, yLabel;
    bool logY = false;
    double yMin = kNaN, yMax = kNaN;
};

LayerFigureSpec layerFigureSpec(const std::string &metric, const ProfileSettings &settings)
{
    LayerFigureSpec spec;
    if (metric == "first_token_mass") {
        spec.title = QObject::tr("First-token mass per layer (mean over the layer's heads)");
        spec.yLabel = QObject::tr("first-token mass");
        spec.yMin = 0;
        spec.yMax = 1.02;
    } else if (metric == "sink_1") {
        spec.title = QObject::tr("Sink\u2081 per layer: share of the layer's heads with \u03b1\u2081 > %1")
                         .arg(settings.epsilon);
        spec.yLabel = QObject::tr("heads with \u03b1\u2081 > \u03b5 (%)");
        spec.yMin = 0;
        spec.yMax = 105;
    } else if (metric == "massive_top1") {
        spec.title = QObject::tr("Massive activations per layer: largest |h| (Sun et al.)");
        spec.yLabel = QObject::tr("largest |h| (log scale)");
        spec.logY = true;
    } else {
        spec.title = QString::fromStdString(metric) + QObject::tr(" per layer");
        spec.yLabel = QString::fromStdString(metric);
    }
    return spec;
}

// Colours of the models: Okabe-Ito in profile order, or, for a checkpoint series (every model has a
// step), viridis from early (dark) to late (light) so the order reads from the colour.
std::map<std::string, QColor> modelColours(const Profile &profile, const PlotStyle &style)
{
    std::map<std::string, QColor> colours;
    std::vector<const ProfileModel *> stepped;
    for (const ProfileModel &m : profile.models) {
        if (m.step) {
            stepped.push_back(&m);
        }
    }
    if (stepped.size() == profile.models.size() && stepped.size() > 2) {
        std::stable_sort(stepped.begin(), stepped.end(), [](auto *a, auto *b) { return *a->step < *b->step; });
        for (size_t i = 0; i < stepped.size(); ++i) {
            colours[stepped[i]->key] = colourAt(ColourMap::Viridis, 0.9 * double(i) / double(stepped.size() - 1));
        }
        return colours;
    }
    for (size_t i = 0; i < profile.models.size(); ++i) {
        colours[profile.models[i].key] = seriesColour(int(i), style.theme);
    }
    return colours;
}

} // namespace

bool writeProfileFigures(const QString &dir, const QList<FigureFormat> &formats, const ProfileFigureSet &set,
                         QStringList *written, QStringList *notes, QString *error)
{
    auto fail = [&](const QString &message) {
        if (error) {
            *error = message;
        }
        return false;
    };
    if (!set.profile) {
        return fail(QObject::tr("no profile to draw"));
    }
    const Profile &profile = *set.profile;
    if (set.summaries && set.summaries->size() != profile.cells.size()) {
        return fail(QObject::tr("%1 summaries for %2 cells").arg(set.summaries->size()).arg(profile.cells.size()));
    }
    if (!QDir().mkpath(dir)) {
        return fail(QObject::tr("Cannot create %1").arg(dir));
    }
    const PlotStyle style = figureStyle();
    const ProfileSummaries computed = set.summaries ? ProfileSummaries{} : summarizeAll(profile);
    const ProfileSummaries &summaries = set.summaries ? *set.summaries : computed;
    auto view = [&](const std::string &model, const std::string &data) -> std::optional<CellView> {
        for (size_t i = 0; i < profile.cells.size(); ++i) {
            const ProfileCell &cell = profile.cells[i];
            if (cell.model != model || cell.data != data) {
                continue;
            }
            for (const ProfileModel &m : profile.models) {
                if (m.key == model) {
                    return CellView{&cell, &m, &summaries[i]};
                }
            }
        }
        return std::nullopt;
    };

    FigureOptions base;
    base.pixelSize = set.pixelSize;
    base.dpi = set.dpi;
    base.caption =
        set.caption.isEmpty() ? profileCaption(profile) : set.caption + QLatin1Char(' ') + profileCaption(profile);
    base.background = style.background;
    base.foreground = style.foreground;
    auto write = [&](const QString &stem, const QString &title, const FigureContent &content, QSize pixels = {}) {
        for (FigureFormat format : formats) {
            const QString path = QDir(dir).filePath(stem + QLatin1Char('.') + figureSuffix(format));
            FigureOptions options = base;
            options.title = title;
            if (pixels.isValid()) {
                options.pixelSize = pixels;
            }
            if (!exportFigure(path, format, options, content, error)) {
                return false;
            }
            if (written) {
                written->append(path);
            }
        }
        return true;
    };
    const std::map<std::string, QColor> colours = modelColours(profile, style);

    // layers-<metric>: one panel per data set, one line per model.
    for (const std::string &metric : profileLayerFigureMetrics()) {
        const std::string block = "layer." + metric;
        const LayerFigureSpec spec = layerFigureSpec(metric, profile.settings);
        BandPlot plot;
        plot.xLabel = QObject::tr("layer");
        plot.yLabel = spec.yLabel;
        plot.logY = spec.logY;
        plot.integerX = true;
        plot.yMin = spec.yMin;
        plot.yMax = spec.yMax;
        bool any = false;
        for (const ProfileDataSet &data : profile.data) {
            BandPanel panel;
            panel.title = QString::fromStdString(data.name);
            for (const ProfileModel &model : profile.models) {
                const std::optional<CellView> cell = view(model.key, data.name);
                const ProfileBlock *b = cell ? cell->cell->layout.block(block) : nullptr;
                if (!b) {
                    continue;
                }
                BandSeries series;
                series.name = QString::fromStdString(model.key);
                series.colour = colours.at(model.key);
                for (int64_t l = 0; l < b->size; ++l) {
                    const ProfileStat &s = *cell->stat(block, l);
                    series.x.push_back(double(l));
                    series.mean.push_back(s.mean);
                    series.low.push_back(s.low);
                    series.high.push_back(s.high);
                }
                panel.series.push_back(std::move(series));
                any = true;
            }
            plot.panels.push_back(std::move(panel));
        }
        if (!any) {
            if (notes) {
                notes->append(QObject::tr("no layers-%1 figure (no cell has %2)")
                                  .arg(QString::fromStdString(metric), QString::fromStdString(block)));
            }
            continue;
        }
        const QSize pixels = plot.panels.size() > 2 ? QSize(3000, 1400) : set.pixelSize;
        if (!write(
                QStringLiteral("layers-") + QString::fromStdString(metric), spec.title,
                [&](QCPPainter *p, const QSize &size) { renderBandPlot(p, size, plot, style); }, pixels)) {
            return false;
        }
    }

    // grid-<model>-<data>: mean alpha_1 per layer and head, on 0..1.
    int grids = 0, skipped = 0;
    std::set<QString> stems;
    for (const ProfileCell &cell : profile.cells) {
        const std::optional<CellView> v = view(cell.model, cell.data);
        const ProfileBlock *b = v ? cell.layout.block("head.alpha_first") : nullptr;
        if (!b || cell.layout.layers <= 0 || cell.layout.heads <= 0 ||
            b->size != cell.layout.layers * cell.layout.heads) {
            if (notes) {
                notes->append(QObject::tr("no grid for %1 on %2 (no head.alpha_first values)")
                                  .arg(QString::fromStdString(cell.model), QString::fromStdString(cell.data)));
            }
            continue;
        }
        if (grids >= set.maxGrids) {
            ++skipped;
            continue;
        }
        QString stem = QStringLiteral("grid-%1-%2").arg(profileFileStem(cell.model), profileFileStem(cell.data));
        for (int k = 2; stems.count(stem); ++k) {
            stem = QStringLiteral("grid-%1-%2-%3").arg(profileFileStem(cell.model), profileFileStem(cell.data)).arg(k);
        }
        stems.insert(stem);
        const int64_t layers = cell.layout.layers, heads = cell.layout.heads;
        PooledGrid grid;
        grid.nx = heads;
        grid.ny = layers;
        grid.window = TokenWindow{0, layers - 1, 0, heads - 1};
        grid.data.resize(size_t(layers * heads));
        for (int64_t i = 0; i < layers * heads; ++i) {
            grid.data[size_t(i)] = float(v->stat("head.alpha_first", i)->mean);
        }
        const QString title = QObject::tr("Mean \u03b1\u2081 (Gu et al.) per layer and head: %1 on %2 (n = %3)")
                                  .arg(QString::fromStdString(cell.model), QString::fromStdString(cell.data))
                                  .arg(cell.samples.size());
        const auto render = [&](QCPPainter *p, const QSize &size) {
            HeatmapPlot figure;
            figure.setStyle(style);
            figure.setColourMap(ColourMap::Viridis);
            figure.resize(size);
            QVector<QString> headLabels, layerLabels;
            for (int64_t h = 0; h < heads; ++h) {
                headLabels << QString::number(h);
            }
            for (int64_t l = 0; l < layers; ++l) {
                layerLabels << QString::number(l);
            }
            figure.setAxes(headLabels, layerLabels, QObject::tr("head"), QObject::tr("layer"));
            figure.setColourBarLabel(QObject::tr("mean \u03b1\u2081 (colour range 0\u20131)"));
            figure.setExtent(heads, layers);
            figure.setGrid(grid, ValueRange{0.0, 1.0}, ScaleMapping::Linear);
            figure.render(p, size);
        };
        if (!write(stem, title, render, QSize(2000, 2000))) {
            return false;
        }
        ++grids;
    }
    if (skipped > 0 && notes) {
        notes->append(QObject::tr("grid figures for the first %1 of %2 model and data set pairs; %3 left out "
                                  "(profile_heads.csv holds every head's values)")
                          .arg(grids)
                          .arg(grids + skipped)
                          .arg(skipped));
    }

    // table: model.sink_1 per model and data set.
    TextTable table;
    table.corner = QObject::tr("model \\ data");
    for (const ProfileDataSet &data : profile.data) {
        table.columns << QString::fromStdString(data.name);
    }
    bool anySink = false;
    for (const ProfileModel &model : profile.models) {
        QString row = QString::fromStdString(model.key);
        if (model.step && row.indexOf(QString::number(*model.step)) < 0) {
            row += QObject::tr(" (step %1)").arg(*model.step);
        }
        table.rows << row;
        std::vector<QString> cells, details;
        for (const ProfileDataSet &data : profile.data) {
            const std::optional<CellView> v = view(model.key, data.name);
            const ProfileStat *s = v ? v->stat("model.sink_1", 0) : nullptr;
            anySink |= s != nullptr;
            cells.push_back(s ? formatStat(*s, 1) : QStringLiteral("\u2013"));
            details.push_back(s ? QObject::tr("n = %1").arg(s->n) : QString());
        }
        table.cells.push_back(std::move(cells));
        table.details.push_back(std::move(details));
    }
    if (anySink) {
        const QString title = QObject::tr("Sink\u2081 (%, heads with \u03b1\u2081 > \u03b5 = %1; T = %2): mean [%3% "
                                          "interval] per model and data set")
                                  .arg(profile.settings.epsilon)
                                  .arg(profile.settings.tokens)
                                  .arg(profile.settings.confidence * 100.0, 0, 'g', 3);
        const QSize pixels(2400, std::clamp(420 + 125 * int(table.rows.size() + 1), 800, 3000));
        if (!write(
                QStringLiteral("table"), title,
                [&](QCPPainter *p, const QSize &size) { renderTextTable(p, size, table, style); }, pixels)) {
            return false;
        }
    } else if (notes) {
        notes->append(QObject::tr("no table (no cell has model.sink_1)"));
    }

    // checkpoints-sink_1: model.sink_1 against the step, one line per data set.
    std::vector<const ProfileModel *> stepped;
    for (const ProfileModel &m : profile.models) {
        if (m.step) {
            stepped.push_back(&m);
        }
    }
    std::stable_sort(stepped.begin(), stepped.end(), [](auto *a, auto *b) { return *a->step < *b->step; });
    if (stepped.size() >= 2) {
        BandPlot plot;
        plot.xLabel = QObject::tr("training step");
        plot.yLabel = QObject::tr("Sink\u2081 (%, heads with \u03b1\u2081 > \u03b5)");
        plot.yMin = 0;
        plot.yMax = 105;
        const double first = double(*stepped.front()->step), last = double(*stepped.back()->step);
        plot.logX = first > 0 && last / first >= 100;
        BandPanel panel;
        panel.title = QObject::tr("\u03b5 = %1").arg(profile.settings.epsilon);
        for (size_t d = 0; d < profile.data.size(); ++d) {
            BandSeries series;
            series.name = QString::fromStdString(profile.data[d].name);
            series.colour = seriesColour(int(d), style.theme);
            for (const ProfileModel *m : stepped) {
                const std::optional<CellView> v = view(m->key, profile.data[d].name);
                const ProfileStat *s = v ? v->stat("model.sink_1", 0) : nullptr;
                series.x.push_back(double(*m->step));
                series.mean.push_back(s ? s->mean : kNaN);
                series.low.push_back(s ? s->low : kNaN);
                series.high.push_back(s ? s->high : kNaN);
            }
            panel.series.push_back(std::move(series));
        }
        plot.panels.push_back(std::move(panel));
        const QString title = QObject::tr("Sink\u2081 over training (%1 checkpoints, steps %2\u2013%3)%4")
                                  .arg(stepped.size())
                                  .arg(*stepped.front()->step)
                                  .arg(*stepped.back()->step)
                                  .arg(plot.logX ? QObject::tr(", log step axis") : QString());
        if (!write(QStringLiteral("checkpoints-sink_1"), title,
                   [&](QCPPainter *p, const QSize &size) { renderBandPlot(p, size, plot, style); })) {
            return false;
        }
        if (stepped.size() < profile.models.size() && notes) {
            notes->append(QObject::tr("checkpoints-sink_1 leaves out %1 model(s) without a training step")
                              .arg(profile.models.size() - stepped.size()));
        }
    }
    return true;
}

} // namespace sinkscope::ui
