// Session files (ui/session.h) on arbitrary bytes: Qt's JSON parser, then Session::fromJson. A session
// that loads is saved as JSON and must load again.
#include "fuzz_support.h"

#include "session.h"

#include <QByteArray>
#include <QJsonDocument>

using namespace sinkscope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string path = fuzz::writeScratch(".sinkscope", data, size);
    QString error;
    auto session = ui::Session::load(QString::fromStdString(path), &error);
    if (!session) {
        fuzz::check(error.startsWith(QString::fromStdString(path)),
                    "error does not name the file: " + error.toStdString());
        return 0;
    }
    QString again;
    fuzz::check(ui::Session::fromJson(session->toJson(), &again).has_value(),
                "a loaded session does not read back: " + again.toStdString());
    return 0;
}
