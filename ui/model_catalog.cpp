#include "model_catalog.h"

#include "sinkscope/runtime/paths.h"

#include <QFile>
#include <QFileInfo>
#include <QObject>
#include <QSettings>

namespace sinkscope::ui {

std::vector<CatalogEntry> modelCatalog()
{
    std::vector<CatalogEntry> entries;
    CatalogEntry smol;
    smol.id = QStringLiteral("smollm2");
    smol.title = QObject::tr("SmolLM2 135M Instruct (default)");
    smol.available = true;
    smol.toolTip = QObject::tr("The default model (Apache 2.0), converted from %1 on first use")
                       .arg(QString::fromLatin1(kDefaultGgufName));
    entries.push_back(smol);

    CatalogEntry gemma;
    gemma.id = QStringLiteral("gemma3");
    gemma.title = QObject::tr("Gemma 3 270M (Gemma Terms of Use)");
    const QString path = QString::fromStdString(gemma3GgufPath());
    gemma.available = !path.isEmpty() && QFileInfo(path).isFile();
    if (gemma.available) {
        gemma.path = path;
        gemma.termsPath = QString::fromStdString(gemma3TermsPath());
        gemma.toolTip = QObject::tr("%1\nGemma is provided under and subject to the Gemma Terms of Use "
                                    "(shown before the first load).")
                            .arg(path);
    } else {
        gemma.toolTip = QObject::tr("Not installed: tools/setup.sh installs Gemma 3 270M (%1) into the data folder, "
                                    "or set SINKSCOPE_GEMMA3_GGUF to the file.")
                            .arg(QString::fromLatin1(kGemma3GgufName));
    }
    entries.push_back(gemma);
    return entries;
}

bool gemmaTermsAccepted(const QSettings &settings)
{
    return settings.value(QString::fromLatin1(kGemmaTermsKey), false).toBool();
}

void setGemmaTermsAccepted(QSettings &settings, bool accepted)
{
    settings.setValue(QString::fromLatin1(kGemmaTermsKey), accepted);
}

QString readTermsHtml(const QString &path)
{
    QFile file(path);
    if (path.isEmpty() || !file.open(QIODevice::ReadOnly)) {
        return QObject::tr("<p>The Gemma Terms of Use were not found next to the model (%1). They are at "
                           "<a href=\"https://ai.google.dev/gemma/terms\">ai.google.dev/gemma/terms</a>.</p>")
            .arg(path.isEmpty() ? QObject::tr("no file") : path.toHtmlEscaped());
    }
    const QString html = QString::fromUtf8(file.readAll());
    // The file is the saved web page: show its article, not the site's navigation around it.
    const qsizetype begin = html.indexOf(QLatin1String("<article"), 0, Qt::CaseInsensitive);
    const qsizetype end = html.indexOf(QLatin1String("</article>"), begin, Qt::CaseInsensitive);
    if (begin >= 0 && end > begin) {
        return QStringLiteral("<html><body>") + html.mid(begin, end + 10 - begin) + QStringLiteral("</body></html>");
    }
    return html;
}

} // namespace sinkscope::ui
