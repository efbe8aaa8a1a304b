#include "sinkscope/runtime/parallel.h"

#include <ATen/ThreadLocalState.h>

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace sinkscope {
namespace {

// A cgroup CPU limit in CPUs (quota / period, rounded up), or 0 when none is found. cgroup v2: cpu.max of
// the process's group and of every group above it; v1: the cpu controller's cfs quota.
int cgroupCpuLimit()
{
    int limit = 0;
    auto take = [&limit](double quota, double period) {
        if (quota > 0 && period > 0) {
            const int cpus = std::max(1, static_cast<int>(std::ceil(quota / period)));
            limit = limit == 0 ? cpus : std::min(limit, cpus);
        }
    };
    std::ifstream self("/proc/self/cgroup");
    std::string line;
    while (std::getline(self, line)) {
        // "0::/user.slice/..." (v2) or "4:cpu,cpuacct:/..." (v1)
        const auto a = line.find(':'), b = line.find(':', a + 1);
        if (a == std::string::npos || b == std::string::npos) {
            continue;
        }
        const std::string controllers = line.substr(a + 1, b - a - 1);
        std::string path = line.substr(b + 1);
        if (controllers.empty()) {
            for (;;) {
                std::ifstream max("/sys/fs/cgroup" + path + "/cpu.max");
                std::string quota;
                double period = 0;
                if (max >> quota >> period && quota != "max") {
                    take(std::atof(quota.c_str()), period);
                }
                if (path.empty() || path == "/") {
                    break;
                }
                path = path.substr(0, path.find_last_of('/'));
            }
        } else if (("," + controllers + ",").find(",cpu,") != std::string::npos) {
            for (const std::string dir : {"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"}) {
                std::ifstream q(dir + path + "/cpu.cfs_quota_us"), p(dir + path + "/cpu.cfs_period_us");
                double quota = 0, period = 0;
                if (q >> quota && p >> period) {
                    take(quota, period);
                    break;
                }
            }
        }
    }
    return limit;
}

thread_local bool t_inChunk = false;

// One parallelFor in flight: chunks are taken by index; the call ends when `done` reaches `chunks`.
struct Job {
    const std::function<void(int64_t, int64_t)> *body = nullptr;
    at::ThreadLocalState state;
    int64_t count = 0;
    int64_t chunk = 1;
    int64_t chunks = 0;
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    std::atomic<bool> failed{false};
    std::exception_ptr error;
    std::mutex errorMutex;

    // Takes and runs chunks until none is left; returns how many this thread finished.
    int64_t work()
    {
        int64_t finished = 0;
        for (int64_t c = next.fetch_add(1); c < chunks; c = next.fetch_add(1)) {
            if (!failed.load(std::memory_order_relaxed)) {
                const int64_t begin = c * chunk, end = std::min(count, begin + chunk);
                const bool outer = t_inChunk;
                t_inChunk = true;
                try {
                    at::ThreadLocalStateGuard guard(state);
                    (*body)(begin, end);
                } catch (...) {
                    std::lock_guard lock(errorMutex);
                    if (!error) {
                        error = std::current_exception();
                    }
                    failed = true;
                }
                t_inChunk = outer;
            }
            ++finished;
        }
        return finished;
    }
};

class Pool
{
public:
    ~Pool() { resize(1); }

    int size() const { return m_size.load(); }

    void resize(int threads)
    {
        std::unique_lock busy(m_busy); // never while a call runs
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_wake.notify_all();
        for (auto &w : m_workers) {
            w.join();
        }
        m_workers.clear();
        m_stop = false;
        for (int i = 1; i < threads; ++i) {
            m_workers.emplace_back([this] { loop(); });
        }
        m_size.store(static_cast<int>(m_workers.size()) + 1);
    }

    void run(int64_t count, int64_t grain, const std::function<void(int64_t, int64_t)> &body)
    {
        std::unique_lock busy(m_busy, std::try_to_lock);
        const int threads = static_cast<int>(m_workers.size()) + 1;
        if (!busy.owns_lock() || t_inChunk || threads == 1 || count <= grain) {
            body(0, count); // nested, contended, one thread or one chunk: inline
            return;
        }
        auto job = std::make_shared<Job>();
        job->body = &body;
        job->count = count;
        // About four chunks per thread, never below the grain: enough to balance, few enough to be cheap.
        const int64_t target = static_cast<int64_t>(threads) * 4;
        job->chunk = std::max(grain, (count + target - 1) / target);
        job->chunks = (count + job->chunk - 1) / job->chunk;
        {
            std::lock_guard lock(m_mutex);
            m_job = job;
            ++m_generation;
        }
        m_wake.notify_all();
        const int64_t mine = job->work();
        {
            std::unique_lock lock(m_mutex);
            m_finished += mine;
            m_doneCv.wait(lock, [&] { return m_finished >= job->chunks; });
            m_finished = 0;
            m_job.reset();
        }
        if (job->error) {
            std::rethrow_exception(job->error);
        }
    }

private:
    void loop()
    {
        uint64_t seen = 0;
        for (;;) {
            std::shared_ptr<Job> job;
            {
                std::unique_lock lock(m_mutex);
                m_wake.wait(lock, [&] { return m_stop || (m_job && m_generation != seen); });
                if (m_stop) {
                    return;
                }
                seen = m_generation;
                job = m_job;
            }
            const int64_t mine = job->work();
            if (mine > 0) {
                std::lock_guard lock(m_mutex);
                if (m_job == job) {
                    m_finished += mine;
                    if (m_finished >= job->chunks) {
                        m_doneCv.notify_all();
                    }
                }
            }
        }
    }

    std::mutex m_busy; // held by the thread whose call owns the pool
    std::mutex m_mutex;
    std::condition_variable m_wake;
    std::condition_variable m_doneCv;
    std::vector<std::thread> m_workers; // changed only by resize(), which holds m_busy
    std::atomic<int> m_size{1};         // workers + the caller, for readers on any thread
    std::shared_ptr<Job> m_job;
    uint64_t m_generation = 0;
    int64_t m_finished = 0;
    bool m_stop = false;
};

Pool &pool()
{
    static Pool *p = [] {
        auto *created = new Pool; // never destroyed: workers must not be joined during static destruction
        created->resize(defaultParallelThreads());
        return created;
    }();
    return *p;
}

} // namespace

void parallelFor(int64_t count, int64_t grain, const std::function<void(int64_t begin, int64_t end)> &body)
{
    if (count <= 0) {
        return;
    }
    pool().run(count, std::max<int64_t>(1, grain), body);
}

int parallelThreads()
{
    return pool().size();
}

void setParallelThreads(int threads)
{
    pool().resize(threads > 0 ? std::min(threads, 1024) : defaultParallelThreads());
}

int usableCores()
{
    int cores = 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        cores = CPU_COUNT(&set);
    }
    if (cores <= 0) {
        cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    }
    if (const int limit = cgroupCpuLimit(); limit > 0) {
        cores = std::min(cores, limit);
    }
    return std::max(1, cores);
}

int defaultParallelThreads()
{
    if (const char *v = std::getenv("SINKSCOPE_THREADS"); v && *v) {
        char *end = nullptr;
        const long n = std::strtol(v, &end, 10);
        if (end && *end == '\0' && n > 0 && n <= 1024) {
            return static_cast<int>(n);
        }
    }
    return usableCores();
}

} // namespace sinkscope
