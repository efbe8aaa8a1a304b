// The lesson handout PDF: A4 pages drawn with the window's figure code (ui/figures.h) on the offscreen
// platform; captions through the lesson panel's Markdown and formula renderer (ui/lesson_text.h).
#include "lesson_handout.h"

#include "attention_math.h"
#include "figure_app.h"
#include "figures.h"
#include "lesson_text.h"
#include "palettes.h"
#include "streaming_view.h"

#include "sinkscope/common/atomic_file.h"

#include <QFileInfo>
#include <QPageSize>
#include <QPdfWriter>
#include <QTextDocument>

#include <qcustomplot.h>

#include <algorithm>

namespace sinkscope::cli {

namespace {

using lessons::CheckStatus;

QString q(const std::string &s)
{
    return QString::fromStdString(s);
}

QFont font(double points, bool bold = false, bool italic = false)
{
    QFont f(QStringLiteral("DejaVu Sans"));
    f.setPointSizeF(points);
    f.setBold(bold);
    f.setItalic(italic);
    return f;
}

// A block of caption Markdown (formulas between dollars, as the lesson panel renders them) laid out at
// `width`.
std::unique_ptr<QTextDocument> textBlock(const QString &text, double points, double width)
{
    auto doc = std::make_unique<QTextDocument>();
    doc->setDefaultFont(font(points));
    doc->setDocumentMargin(0);
    doc->setHtml(ui::lessonTextToHtml(text, ui::LessonTextStyle{points, false}));
    doc->setTextWidth(width);
    return doc;
}

void drawBlock(QPainter *painter, QTextDocument &doc, double x, double y)
{
    painter->save();
    painter->translate(x, y);
    doc.drawContents(painter);
    painter->restore();
}

QString checkLine(const lessons::CheckOutcome &check)
{
    const QString mark = check.status == CheckStatus::Confirmed      ? QStringLiteral("\u2713 confirmed")
                         : check.status == CheckStatus::NotConfirmed ? QStringLiteral("\u2717 not confirmed")
                                                                     : QStringLiteral("unavailable");
    return QStringLiteral("Check `%1`: **%2** (%3)").arg(q(check.expression), mark, q(check.detail));
}

void drawFigure(QCPPainter *painter, const QRect &rect, const HandoutFigure &f, const ui::PlotStyle &style)
{
    const ui::ColourMap map = ui::colourMapFromKey(q(f.colours));
    const QSize size = rect.size();
    painter->save();
    painter->translate(rect.topLeft());
    switch (f.kind) {
    case HandoutFigure::Kind::None:
        break;
    case HandoutFigure::Kind::HeadMetric:
        ui::renderHeadMetricFigure(painter, size, *f.metrics, f.metric, true, style, map);
        break;
    case HandoutFigure::Kind::HeadMap: {
        ui::HeadFigure h;
        h.matrix = ui::headMatrix(f.attention, f.head);
        h.layer = f.layer;
        h.head = f.head;
        h.labels =
            ui::tokenAxisLabels(f.metrics->tokenTexts.empty() ? std::vector<std::string>(size_t(f.metrics->length))
                                                              : f.metrics->tokenTexts);
        h.scale.mapping = f.logScale ? ui::ScaleMapping::Log : ui::ScaleMapping::Linear;
        h.scale.transform = f.withoutSink ? ui::ScaleTransform::RenormaliseWithoutSink : ui::ScaleTransform::Raw;
        h.scale.clampPercentile = f.clampPercentile > 0;
        if (f.clampPercentile > 0) {
            h.scale.percentile = f.clampPercentile;
        }
        if (f.zoom.size() == 4) {
            h.window = ui::TokenWindow{f.zoom[0], f.zoom[1], f.zoom[2], f.zoom[3]};
        }
        h.range = ui::colourRange(ui::transformHead(h.matrix, h.scale.transform).values, h.scale);
        h.slidingWindow = f.slidingWindow;
        ui::renderHeadAttentionFigure(painter, size, h, style, map);
        break;
    }
    case HandoutFigure::Kind::Received: {
        std::vector<int64_t> sinks;
        for (const DetectedSink &s : f.metrics->sinks) {
            sinks.push_back(s.position);
        }
        const auto labels =
            ui::tokenAxisLabels(f.metrics->tokenTexts.empty() ? std::vector<std::string>(size_t(f.metrics->length))
                                                              : f.metrics->tokenTexts);
        ui::renderReceivedFigure(painter, size, ui::receivedPerToken(*f.metrics, f.layer), labels, false,
                                 f.layer < 0 ? QObject::tr("token (all layers)")
                                             : QObject::tr("token (layer %1)").arg(f.layer),
                                 style, sinks);
        break;
    }
    case HandoutFigure::Kind::Streaming: {
        ui::StreamingOutcome outcome;
        outcome.cache = f.cache;
        for (const auto &run : f.streams) {
            outcome.runs.push_back(*run);
        }
        ui::renderLinePlot(painter, size, ui::streamingLinePlot(outcome), style);
        break;
    }
    case HandoutFigure::Kind::Lines: {
        ui::LinePlot plot;
        plot.xLabel = q(f.xLabel);
        plot.yLabel = q(f.yLabel);
        for (size_t i = 0; i < f.names.size(); ++i) {
            plot.series.push_back({q(f.names[i]), f.x[i], f.y[i]});
        }
        ui::renderLinePlot(painter, size, plot, style);
        break;
    }
    }
    painter->restore();
}

class HandoutPainter
{
public:
    HandoutPainter(QPdfWriter &writer, QCPPainter &painter, const Handout &handout)
        : m_writer(writer), m_painter(painter), m_handout(handout), m_page(painter.viewport().size()),
          m_style(ui::plotStyle(ui::Theme::Light, false))
    {
        m_style.font = font(7);
        m_style.titleFont = font(8);
    }

    void stepPage(size_t i)
    {
        const HandoutStep &step = m_handout.steps[i];
        const Lesson &lesson = m_handout.lesson;
        const double width = m_page.width();
        double y = header(QObject::tr("%1 \u2014 step %2 of %3%4")
                              .arg(q(lesson.title))
                              .arg(i + 1)
                              .arg(lesson.steps.size())
                              .arg(step.model.empty() ? QString() : QStringLiteral(" \u2014 ") + q(step.model)));
        m_painter.setFont(font(16, true));
        const QRectF titleRect(0, y, width, 40);
        QRectF used;
        m_painter.drawText(titleRect, Qt::AlignLeft | Qt::TextWordWrap, q(step.title), &used);
        y += used.height() + 10;

        if (!step.skipped.empty()) {
            auto note = textBlock(QObject::tr("*Not run here: %1.*").arg(q(step.skipped)), 10, width);
            drawBlock(&m_painter, *note, 0, y);
            footer(i + 1);
            return;
        }
        // The text under the figure, laid out first so that the figure takes what is left.
        QString text = q(step.numbers.caption);
        if (!step.question.empty()) {
            text += QStringLiteral("\n\n**Question for the class.** ") + q(step.question);
            if (!step.answer.empty()) {
                text += QObject::tr(" *(answer on the last page)*");
            }
        }
        if (step.numbers.hasCheck) {
            text += QStringLiteral("\n\n") + checkLine(step.numbers.check);
        }
        auto body = textBlock(text, 10, width);
        const double bottom = m_page.height() - 24;
        const double figureTitle = 18;
        const double available = bottom - y - body->size().height() - figureTitle - 16;
        const double figureHeight = std::clamp(available, 160.0, width * 0.72);
        const HandoutFigure &figure = step.figure;
        m_painter.setFont(font(9, false, true));
        m_painter.drawText(QRectF(0, y, width, figureTitle), Qt::AlignLeft | Qt::AlignVCenter, q(figure.title));
        y += figureTitle + 2;
        if (figure.kind != HandoutFigure::Kind::None) {
            drawFigure(&m_painter, QRect(0, int(y), int(width), int(figureHeight)), figure, m_style);
            y += figureHeight + 14;
        } else {
            y += 8;
        }
        drawBlock(&m_painter, *body, 0, y);
        footer(i + 1);
    }

    void answersPage()
    {
        const Lesson &lesson = m_handout.lesson;
        const double width = m_page.width();
        double y = header(q(lesson.title));
        QString text = QObject::tr("## Answers\n\n");
        int answers = 0;
        for (size_t i = 0; i < m_handout.steps.size(); ++i) {
            const HandoutStep &s = m_handout.steps[i];
            if (s.question.empty()) {
                continue;
            }
            ++answers;
            text +=
                QStringLiteral("**%1. %2** %3\n\n*%4*\n\n")
                    .arg(i + 1)
                    .arg(q(s.title), q(s.question), s.answer.empty() ? QObject::tr("(no answer given)") : q(s.answer));
        }
        if (answers == 0) {
            text += QObject::tr("This lesson asks no questions.\n\n");
        }
        text += QObject::tr("## Checks\n\n");
        for (size_t i = 0; i < m_handout.steps.size(); ++i) {
            const HandoutStep &s = m_handout.steps[i];
            if (!s.skipped.empty()) {
                text += QObject::tr("- Step %1, %2: not run (%3)\n").arg(i + 1).arg(q(s.title), q(s.skipped));
            } else if (s.numbers.hasCheck) {
                text += QStringLiteral("- Step %1, %2 (%3): %4\n")
                            .arg(i + 1)
                            .arg(q(s.title), q(s.model), checkLine(s.numbers.check));
            }
        }
        if (!lesson.sources.empty()) {
            text += QObject::tr("\n## Sources\n\n%1\n").arg(q(lesson.sources));
        }
        auto body = textBlock(text, 9.5, width);
        // A long answer page is scaled to fit rather than cut.
        const double room = m_page.height() - 24 - y;
        const double scale = std::min(1.0, room / std::max(1.0, body->size().height()));
        m_painter.save();
        m_painter.translate(0, y);
        m_painter.scale(scale, scale);
        body->drawContents(&m_painter);
        m_painter.restore();
        footer(lesson.steps.size() + 1);
    }

    void newPage() { m_writer.newPage(); }

private:
    using Lesson = lessons::Lesson;

    double header(const QString &line)
    {
        m_painter.setPen(QColor(90, 90, 90));
        m_painter.setFont(font(8));
        m_painter.drawText(QRectF(0, 0, m_page.width(), 14), Qt::AlignLeft | Qt::AlignVCenter, line);
        m_painter.drawLine(QPointF(0, 18), QPointF(m_page.width(), 18));
        m_painter.setPen(Qt::black);
        return 28;
    }

    void footer(size_t page)
    {
        m_painter.setPen(QColor(90, 90, 90));
        m_painter.setFont(font(8));
        const QString text = QObject::tr("SinkScope lesson \u201c%1\u201d (%2 min), page %3 of %4")
                                 .arg(q(m_handout.lesson.id))
                                 .arg(m_handout.lesson.durationMinutes)
                                 .arg(page)
                                 .arg(m_handout.lesson.steps.size() + 1);
        m_painter.drawText(QRectF(0, m_page.height() - 14, m_page.width(), 14), Qt::AlignHCenter, text);
        m_painter.setPen(Qt::black);
    }

    QPdfWriter &m_writer;
    QCPPainter &m_painter;
    const Handout &m_handout;
    QSize m_page;
    ui::PlotStyle m_style;
};

} // namespace

bool writeLessonHandout(const Handout &handout, std::string *error)
{
    FigureApp app;
    if (handout.steps.size() != handout.lesson.steps.size()) {
        *error = handout.path + ": internal: the handout has " + std::to_string(handout.steps.size()) +
                 " steps for a lesson of " + std::to_string(handout.lesson.steps.size());
        return false;
    }
    // Written beside the file and renamed over it: a failure leaves an older handout whole.
    auto pending = PendingFile::create(handout.path);
    if (!pending) {
        *error = pending.error().message;
        return false;
    }
    const QString path = q(pending->tempPath());
    QPdfWriter writer(path);
    writer.setResolution(96);
    writer.setTitle(q(handout.lesson.title));
    writer.setCreator(QStringLiteral("SinkScope"));
    writer.setPageSize(QPageSize(QPageSize::A4));
    writer.setPageMargins(QMarginsF(16, 14, 16, 12), QPageLayout::Millimeter);
    QCPPainter painter;
    if (!painter.begin(&writer)) {
        *error = handout.path + ": the PDF writer cannot start";
        return false;
    }
    painter.setMode(QCPPainter::pmVectorized);
    painter.setMode(QCPPainter::pmNoCaching);
    HandoutPainter pages(writer, painter, handout);
    for (size_t i = 0; i < handout.steps.size(); ++i) {
        if (i > 0) {
            pages.newPage();
        }
        pages.stepPage(i);
    }
    pages.newPage();
    pages.answersPage();
    painter.end();
    if (auto ok = pending->commit(); !ok) {
        *error = ok.error().message;
        return false;
    }
    return true;
}

} // namespace sinkscope::cli
