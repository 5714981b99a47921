// Runs the vendored whisper.cpp the way src/asr/whisper.rs does (greedy,
// temperature fallback, no context, token timestamps with DTW, English) over
// fixed windows of a 16 kHz mono s16le recording, on the GPU or the CPU, with
// one state or two taking windows from one queue. Prints every window's text and
// its tokens' DTW stamps as JSON lines, then a summary line. See README.md.
#include "whisper.h"
#include "ggml-backend.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

static double now() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

static std::string json_escape(const char * s) {
    std::string out;
    for (; *s; ++s) {
        unsigned char c = (unsigned char) *s;
        if (c == '"' || c == '\\') { out += '\\'; out += (char) c; }
        else if (c < 0x20) { char b[8]; snprintf(b, sizeof b, "\\u%04x", c); out += b; }
        else out += (char) c;
    }
    return out;
}

static size_t gpu_free() {
    ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_GPU);
    if (!dev) return 0;
    size_t free = 0, total = 0;
    ggml_backend_dev_memory(dev, &free, &total);
    return free;
}

static void quiet_log(ggml_log_level level, const char * text, void *) {
    if (level >= GGML_LOG_LEVEL_WARN || strstr(text, "buffer") || strstr(text, "CUDA") || strstr(text, "backend")) {
        fputs(text, stderr);
    }
}

int main(int argc, char ** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL PCM_S16LE_16K [--cpu] [--flash] [--no-dtw] [--threads N] [--states 1|2] "
                        "[--window SECONDS] [--preset base|tiny.en|tiny|base.en]\n", argv[0]);
        return 2;
    }
    const char * model = argv[1];
    const char * pcm_path = argv[2];
    bool gpu = true, flash = false, dtw = true;
    int threads = 4, states = 1;
    double window = 28.0;
    std::string preset = "base";
    for (int i = 3; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--cpu") gpu = false;
        else if (a == "--flash") flash = true;
        else if (a == "--no-dtw") dtw = false;
        else if (a == "--threads" && i + 1 < argc) threads = atoi(argv[++i]);
        else if (a == "--states" && i + 1 < argc) states = atoi(argv[++i]);
        else if (a == "--window" && i + 1 < argc) window = atof(argv[++i]);
        else if (a == "--preset" && i + 1 < argc) preset = argv[++i];
        else { fprintf(stderr, "unknown argument %s\n", a.c_str()); return 2; }
    }
    whisper_log_set(quiet_log, nullptr);

    FILE * f = fopen(pcm_path, "rb");
    if (!f) { perror(pcm_path); return 1; }
    std::vector<float> pcm;
    int16_t buf[4096];
    size_t n;
    while ((n = fread(buf, 2, 4096, f)) > 0) for (size_t i = 0; i < n; ++i) pcm.push_back(buf[i] / 32768.0f);
    fclose(f);

    whisper_context_params cp = whisper_context_default_params();
    cp.use_gpu = gpu;
    cp.flash_attn = flash;
    cp.dtw_token_timestamps = dtw && !flash;
    cp.dtw_aheads_preset = preset == "tiny.en" ? WHISPER_AHEADS_TINY_EN : preset == "tiny" ? WHISPER_AHEADS_TINY
                         : preset == "base.en" ? WHISPER_AHEADS_BASE_EN : WHISPER_AHEADS_BASE;
    const size_t free0 = gpu_free();
    double t = now();
    whisper_context * ctx = whisper_init_from_file_with_params_no_state(model, cp);
    if (!ctx) { fprintf(stderr, "could not load %s\n", model); return 1; }
    const double load_s = now() - t;
    const size_t free1 = gpu_free();
    std::vector<whisper_state *> st;
    std::vector<size_t> state_bytes;
    for (int i = 0; i < states; ++i) {
        size_t before = gpu_free();
        whisper_state * s = whisper_init_state(ctx);
        if (!s) { fprintf(stderr, "no state %d\n", i); return 1; }
        st.push_back(s);
        state_bytes.push_back(before - gpu_free());
    }

    const size_t win = (size_t) (window * 16000);
    std::vector<std::pair<size_t, size_t>> windows;
    for (size_t s = 0; s < pcm.size(); s += win) windows.push_back({s, std::min(pcm.size(), s + win)});
    std::vector<std::string> lines(windows.size());
    std::vector<double> secs(windows.size());
    std::atomic<size_t> next{0};
    std::atomic<int> failed{0};

    auto worker = [&](whisper_state * state, int n_threads) {
        for (size_t w; (w = next.fetch_add(1)) < windows.size();) {
            whisper_full_params p = whisper_full_default_params(WHISPER_SAMPLING_GREEDY);
            p.n_threads = n_threads;
            p.language = "en";
            p.translate = false;
            p.no_context = true;
            p.token_timestamps = true;
            p.print_special = p.print_progress = p.print_realtime = p.print_timestamps = false;
            p.suppress_blank = true;
            p.temperature = 0.0f;
            p.temperature_inc = 0.2f;
            p.no_speech_thold = 0.6f;
            p.logprob_thold = -1.0f;
            p.greedy.best_of = 1;
            const double t0 = now();
            const auto [a, b] = windows[w];
            if (whisper_full_with_state(ctx, state, p, pcm.data() + a, (int) (b - a)) != 0) { failed++; continue; }
            secs[w] = now() - t0;
            std::string line = "{\"window\":" + std::to_string(w) + ",\"start\":" + std::to_string(a / 16000.0) +
                               ",\"seconds\":" + std::to_string(secs[w]) + ",\"segments\":[";
            const int ns = whisper_full_n_segments_from_state(state);
            for (int s = 0; s < ns; ++s) {
                line += std::string(s ? "," : "") + "{\"t0\":" + std::to_string(whisper_full_get_segment_t0_from_state(state, s)) +
                        ",\"t1\":" + std::to_string(whisper_full_get_segment_t1_from_state(state, s)) + ",\"text\":\"" +
                        json_escape(whisper_full_get_segment_text_from_state(state, s)) + "\",\"tokens\":[";
                const int nt = whisper_full_n_tokens_from_state(state, s);
                for (int k = 0; k < nt; ++k) {
                    whisper_token_data d = whisper_full_get_token_data_from_state(state, s, k);
                    if (d.id >= whisper_token_eot(ctx)) continue;
                    char tok[160];
                    snprintf(tok, sizeof tok, "%s[\"%s\",%lld,%lld,%lld,%.4f]", line.back() == '[' ? "" : ",",
                             json_escape(whisper_token_to_str(ctx, d.id)).c_str(), (long long) d.t0, (long long) d.t1,
                             (long long) d.t_dtw, d.p);
                    line += tok;
                }
                line += "]}";
            }
            line += "]}";
            lines[w] = line;
        }
    };
    t = now();
    if (states == 1) {
        worker(st[0], threads);
    } else {
        std::vector<std::thread> pool;
        for (int i = 0; i < states; ++i) pool.emplace_back(worker, st[i], std::max(1, threads / states));
        for (auto & th : pool) th.join();
    }
    const double run_s = now() - t;
    for (auto & l : lines) if (!l.empty()) printf("%s\n", l.c_str());
    double first = windows.empty() ? 0 : secs[0];
    printf("{\"summary\":true,\"gpu\":%s,\"flash\":%s,\"dtw\":%s,\"threads\":%d,\"states\":%d,\"audio_s\":%.2f,"
           "\"windows\":%zu,\"failed\":%d,\"load_s\":%.3f,\"run_s\":%.3f,\"first_window_s\":%.3f,"
           "\"model_gpu_mb\":%.1f,\"state_gpu_mb\":[",
           gpu ? "true" : "false", flash ? "true" : "false", cp.dtw_token_timestamps ? "true" : "false", threads,
           states, pcm.size() / 16000.0, windows.size(), failed.load(), load_s, run_s, first,
           (double) (free0 - free1) / 1048576.0);
    for (size_t i = 0; i < state_bytes.size(); ++i) printf("%s%.1f", i ? "," : "", state_bytes[i] / 1048576.0);
    printf("]}\n");
    for (auto * s : st) whisper_free_state(s);
    whisper_free(ctx);
    return failed.load() ? 1 : 0;
}
