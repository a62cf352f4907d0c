// tokenizer.cc: the C shim over Debian's libsentencepiece (the project's one C++ file).
// Every entry point is extern "C" and catches every exception, so C callers only ever see
// return codes with an lqa_err message. Training feeds sentences through an iterator and takes
// the model back as bytes, so neither input path nor output path ends up inside the .model
// (two trainings on the same text and seed give byte-identical files).
// common/ headers are plain C without extern "C" guards: include them with C linkage first.
extern "C" {
#include "common/check.h"
#include "common/fileio.h"
#include "common/hash.h"
#include "common/log.h"
}

// sentencepiece's own log threshold (exported by libsentencepiece, declared in its internal
// common.h, not in the public headers): the trainer's INFO lines are noise unless LQA_LOG=debug.
namespace sentencepiece {
namespace logging {
void SetMinLogLevel(int v);
}
} // namespace sentencepiece
#include "dataset/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <vector>

// Long texts: sentencepiece's BPE encoder slows down badly on inputs of hundreds of KB (a whole
// book), so lqa_tok_encode cuts a long text into segments that begin at a newline and encodes
// them separately: the first with the model as is, the others with a copy of the model whose
// dummy prefix is switched off. That gives exactly the ids of encoding the whole string when
// (a) no piece contains '\n' (so no token spans a segment edge), (b) the normaliser does not
// remove extra whitespace (context-dependent) and (c) whitespace is a prefix, not a suffix.
// LLaMA's model and the ones lqa-build trains meet all three; other models take the slow path.
// test_tokenizer checks the equality against lqa_tok_encode_whole.
static const size_t kSegmentBytes = 1024;

struct lqa_tokenizer {
    sentencepiece::SentencePieceProcessor sp;
    std::unique_ptr<sentencepiece::SentencePieceProcessor> tail; // no dummy prefix; null: slow path
    char sha256[2 * LQA_SHA256_SIZE + 1];
};

// ---- minimal protobuf walking, enough to switch add_dummy_prefix off in a ModelProto ----
struct PbField {
    uint64_t num, wire, varint;
    size_t begin, end, val_begin, val_end; // whole field, and a length-delimited value
};

static bool pb_varint(const std::string &m, size_t &i, uint64_t &v) {
    v = 0;
    for (int shift = 0; shift < 64 && i < m.size(); shift += 7) {
        uint8_t b = (uint8_t)m[i++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

static void pb_put_varint(std::string &o, uint64_t v) {
    while (v >= 0x80) {
        o.push_back((char)(0x80 | (v & 0x7f)));
        v >>= 7;
    }
    o.push_back((char)v);
}

static bool pb_fields(const std::string &m, std::vector<PbField> &out) {
    for (size_t i = 0; i < m.size();) {
        PbField f{};
        f.begin = i;
        uint64_t tag;
        if (!pb_varint(m, i, tag)) return false;
        f.num = tag >> 3;
        f.wire = tag & 7;
        if (f.wire == 0) {
            if (!pb_varint(m, i, f.varint)) return false;
        } else if (f.wire == 1 || f.wire == 5) {
            i += f.wire == 1 ? 8 : 4;
        } else if (f.wire == 2) {
            uint64_t len;
            if (!pb_varint(m, i, len) || len > m.size() - i) return false;
            f.val_begin = i;
            f.val_end = i + len;
            i += len;
        } else {
            return false;
        }
        if (i > m.size()) return false;
        f.end = i;
        out.push_back(f);
    }
    return true;
}

// Returns the model with normalizer_spec.add_dummy_prefix = false, or "" when the fast path is
// not safe for this model (see above).
static std::string model_without_dummy_prefix(const std::string &model) {
    std::vector<PbField> top;
    if (!pb_fields(model, top)) return "";
    std::string out;
    bool have_norm = false;
    for (const PbField &f : top) {
        std::string val = f.wire == 2 ? model.substr(f.val_begin, f.val_end - f.val_begin) : "";
        std::vector<PbField> in;
        if (f.num == 2 && f.wire == 2) { // trainer_spec: treat_whitespace_as_suffix = 24
            if (!pb_fields(val, in)) return "";
            for (const PbField &g : in)
                if (g.num == 24 && g.wire == 0 && g.varint) return "";
        }
        if (f.num != 3 || f.wire != 2) {
            out.append(model, f.begin, f.end - f.begin);
            continue;
        }
        if (!pb_fields(val, in)) return "";
        bool keeps_whitespace = false;
        std::string norm;
        for (const PbField &g : in) {
            if (g.num == 4 && g.wire == 0) keeps_whitespace = g.varint == 0; // remove_extra_whitespaces
            if (g.num != 3) norm.append(val, g.begin, g.end - g.begin);
        }
        if (!keeps_whitespace) return ""; // absent means true
        norm += std::string("\x18\x00", 2); // add_dummy_prefix = false
        pb_put_varint(out, (3 << 3) | 2);
        pb_put_varint(out, norm.size());
        out += norm;
        have_norm = true;
    }
    return have_norm ? out : "";
}

static void setup_fast_path(lqa_tokenizer *t, const std::string &model) {
    for (int id = 0; id < t->sp.GetPieceSize(); id++)
        if (t->sp.IdToPiece(id).find('\n') != std::string::npos) return;
    std::string tail_model = model_without_dummy_prefix(model);
    if (tail_model.empty()) return;
    auto tail = std::make_unique<sentencepiece::SentencePieceProcessor>();
    if (tail->LoadFromSerializedProto(tail_model).ok()) t->tail = std::move(tail);
}

extern "C" lqa_tokenizer *lqa_tok_load(const char *model_path, lqa_err *err) {
    lqa_tokenizer *t = nullptr;
    try {
        char *bytes;
        size_t n;
        if (lqa_read_file(model_path, &bytes, &n, err) != 0) return nullptr;
        std::string model(bytes, n);
        free(bytes);
        t = new lqa_tokenizer();
        uint8_t digest[LQA_SHA256_SIZE];
        lqa_sha256(model.data(), model.size(), digest);
        lqa_hex(digest, LQA_SHA256_SIZE, t->sha256);
        auto st = t->sp.LoadFromSerializedProto(model);
        if (!st.ok()) {
            lqa_err_set(err, "%s: not a sentencepiece model: %s", model_path, st.ToString().c_str());
            delete t;
            return nullptr;
        }
        setup_fast_path(t, model);
        return t;
    } catch (const std::exception &e) {
        lqa_err_set(err, "%s: loading tokenizer failed: %s", model_path, e.what());
    } catch (...) {
        lqa_err_set(err, "%s: loading tokenizer failed (unknown exception)", model_path);
    }
    delete t;
    return nullptr;
}

extern "C" void lqa_tok_free(lqa_tokenizer *t) { delete t; }

extern "C" int lqa_tok_vocab_size(const lqa_tokenizer *t) { return t->sp.GetPieceSize(); }
extern "C" int lqa_tok_bos_id(const lqa_tokenizer *t) { return t->sp.bos_id(); }
extern "C" int lqa_tok_eos_id(const lqa_tokenizer *t) { return t->sp.eos_id(); }
extern "C" int lqa_tok_unk_id(const lqa_tokenizer *t) { return t->sp.unk_id(); }
extern "C" int lqa_tok_pad_id(const lqa_tokenizer *t) { return t->sp.pad_id(); }
extern "C" const char *lqa_tok_sha256(const lqa_tokenizer *t) { return t->sha256; }

// Encodes text[0, len) with processor sp into ids (and byte offsets + base when begins != null).
static sentencepiece::util::Status encode_piece(const sentencepiece::SentencePieceProcessor &sp, const char *text,
                                                size_t len, uint32_t base, std::vector<int> &ids,
                                                std::vector<uint32_t> *begins) {
    if (!begins) {
        std::vector<int> out;
        auto st = sp.Encode(absl::string_view(text, len), &out);
        ids.insert(ids.end(), out.begin(), out.end());
        return st;
    }
    sentencepiece::ImmutableSentencePieceText spt;
    auto st = sp.Encode(absl::string_view(text, len), spt.mutable_proto());
    if (!st.ok()) return st;
    uint32_t last = begins->empty() ? 0 : begins->back();
    for (size_t i = 0; i < spt.pieces_size(); i++) {
        auto piece = spt.pieces((int)i);
        ids.push_back((int)piece.id());
        // keep offsets non-decreasing (byte-fallback pieces of one character share a span)
        uint32_t b = base + piece.begin();
        last = b > last ? b : last;
        begins->push_back(last);
    }
    return st;
}

// The whole text, in segments starting at a newline when the fast path is available.
// continuation: text starts at a newline inside a longer text (no dummy prefix at its start).
static sentencepiece::util::Status encode_text(const lqa_tokenizer *t, const char *text, size_t len,
                                               std::vector<int> &ids, std::vector<uint32_t> *begins,
                                               bool continuation = false) {
    const sentencepiece::SentencePieceProcessor &first = continuation ? *t->tail : t->sp;
    if (!t->tail || len <= kSegmentBytes) return encode_piece(first, text, len, 0, ids, begins);
    for (size_t a = 0; a < len;) {
        size_t b = a + kSegmentBytes < len ? a + kSegmentBytes : len;
        const char *nl = b < len ? (const char *)memchr(text + b, '\n', len - b) : nullptr;
        b = nl ? (size_t)(nl - text) : len;
        auto st = encode_piece(a == 0 ? first : *t->tail, text + a, b - a, (uint32_t)a, ids, begins);
        if (!st.ok()) return st;
        a = b;
    }
    return sentencepiece::util::Status();
}

static int32_t *copy_ids(const std::vector<int> &v) {
    int32_t *buf = (int32_t *)lqa_malloc((v.size() + 1) * sizeof(int32_t)); // +1: never a zero-size malloc
    for (size_t i = 0; i < v.size(); i++) buf[i] = v[i];
    return buf;
}

// Runs one of the encoders below into C-owned ids (and byte offsets when begins is not NULL); no
// exception leaves this function.
template <typename Encoder>
static int encode_to_c(Encoder encode, int32_t **ids, uint32_t **begins, size_t *n_ids, lqa_err *err) {
    *ids = nullptr;
    *n_ids = 0;
    if (begins) *begins = nullptr;
    try {
        std::vector<int> out;
        std::vector<uint32_t> off;
        auto st = encode(out, begins ? &off : nullptr);
        if (!st.ok()) return lqa_err_set(err, "tokenizer: encode failed: %s", st.ToString().c_str());
        *ids = copy_ids(out);
        if (begins) {
            uint32_t *b = (uint32_t *)lqa_malloc((off.size() + 1) * sizeof(uint32_t));
            if (!off.empty()) memcpy(b, off.data(), off.size() * sizeof(uint32_t));
            *begins = b;
        }
        *n_ids = out.size();
        return 0;
    } catch (const std::exception &e) {
        return lqa_err_set(err, "tokenizer: encode failed: %s", e.what());
    } catch (...) {
        return lqa_err_set(err, "tokenizer: encode failed (unknown exception)");
    }
}

extern "C" int lqa_tok_encode(const lqa_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n_ids,
                              lqa_err *err) {
    return encode_to_c([&](std::vector<int> &out, std::vector<uint32_t> *) { return encode_text(t, text, len, out, nullptr); },
                       ids, nullptr, n_ids, err);
}

extern "C" int lqa_tok_encode_whole(const lqa_tokenizer *t, const char *text, size_t len, int32_t **ids,
                                    size_t *n_ids, lqa_err *err) {
    return encode_to_c(
        [&](std::vector<int> &out, std::vector<uint32_t> *) { return encode_piece(t->sp, text, len, 0, out, nullptr); },
        ids, nullptr, n_ids, err);
}

extern "C" int lqa_tok_encode_offsets(const lqa_tokenizer *t, const char *text, size_t len, int32_t **ids,
                                      uint32_t **begins, size_t *n_ids, lqa_err *err) {
    *ids = nullptr;
    *begins = nullptr;
    *n_ids = 0;
    if (len > UINT32_MAX) return lqa_err_set(err, "tokenizer: text of %zu bytes is over the 4 GiB offset limit", len);
    return encode_to_c([&](std::vector<int> &out, std::vector<uint32_t> *off) { return encode_text(t, text, len, out, off); },
                       ids, begins, n_ids, err);
}

extern "C" int lqa_tok_fast_path(const lqa_tokenizer *t) { return t->tail != nullptr; }

extern "C" size_t lqa_tok_part_end(const lqa_tokenizer *t, const char *text, size_t len, size_t at_least) {
    if (!t->tail || at_least >= len) return len;
    const char *nl = (const char *)memchr(text + at_least, '\n', len - at_least);
    return nl ? (size_t)(nl - text) : len;
}

extern "C" int lqa_tok_encode_part(const lqa_tokenizer *t, const char *text, size_t len, int continuation,
                                   int32_t **ids, uint32_t **begins, size_t *n_ids, lqa_err *err) {
    *ids = nullptr;
    *n_ids = 0;
    if (begins) *begins = nullptr;
    if (continuation && (!t->tail || len == 0 || text[0] != '\n'))
        return lqa_err_set(err, "tokenizer: a continuation part must start at a newline of a model with the fast path");
    if (len > UINT32_MAX) return lqa_err_set(err, "tokenizer: text of %zu bytes is over the 4 GiB offset limit", len);
    return encode_to_c(
        [&](std::vector<int> &out, std::vector<uint32_t> *off) { return encode_text(t, text, len, out, off, continuation != 0); },
        ids, begins, n_ids, err);
}

// The byte a byte-fallback piece ("<0xE6>") stands for, or -1 for any other piece.
static int piece_byte(const sentencepiece::SentencePieceProcessor &sp, int id) {
    if (!sp.IsByte(id)) return -1;
    unsigned v = 0;
    return sscanf(sp.IdToPiece(id).c_str(), "<0x%2X>", &v) == 1 ? (int)v : -1;
}

// How many trailing ids are the byte-fallback pieces of a character cut short: a lead byte
// announcing more continuation bytes than follow it (a generation stopped mid-character).
static size_t cut_character_ids(const sentencepiece::SentencePieceProcessor &sp, const std::vector<int> &ids) {
    size_t n = ids.size();
    for (size_t k = 1; k <= 4 && k <= n; k++) {
        int b = piece_byte(sp, ids[n - k]);
        if (b < 0) return 0;
        if ((b & 0xC0) == 0x80) continue; // a continuation byte: look further back for its lead
        size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
        return need > k ? k : 0;
    }
    return 0;
}

extern "C" int lqa_tok_decode(const lqa_tokenizer *t, const int32_t *ids, size_t n_ids, char **text, lqa_err *err) {
    *text = nullptr;
    try {
        int vocab = t->sp.GetPieceSize();
        std::vector<int> in(n_ids);
        for (size_t i = 0; i < n_ids; i++) {
            if (ids[i] < 0 || ids[i] >= vocab)
                return lqa_err_set(err, "tokenizer: id %d at position %zu is outside the vocabulary [0, %d)",
                                   (int)ids[i], i, vocab);
            in[i] = ids[i];
        }
        // The ids are decoded as one sequence, so consecutive byte-fallback pieces join into
        // their UTF-8 character; a character cut at the end is dropped, not turned into U+FFFD.
        in.resize(in.size() - cut_character_ids(t->sp, in));
        std::string out;
        auto st = t->sp.Decode(in, &out);
        if (!st.ok()) return lqa_err_set(err, "tokenizer: decode failed: %s", st.ToString().c_str());
        *text = lqa_strndup(out.data(), out.size());
        return 0;
    } catch (const std::exception &e) {
        return lqa_err_set(err, "tokenizer: decode failed: %s", e.what());
    } catch (...) {
        return lqa_err_set(err, "tokenizer: decode failed (unknown exception)");
    }
}

extern "C" const char *lqa_tok_id_to_piece(const lqa_tokenizer *t, int id) {
    if (id < 0 || id >= t->sp.GetPieceSize()) return nullptr;
    try {
        return t->sp.IdToPiece(id).c_str();
    } catch (...) {
        return nullptr;
    }
}

extern "C" int lqa_tok_piece_to_id(const lqa_tokenizer *t, const char *piece) {
    try {
        return t->sp.PieceToId(piece);
    } catch (...) {
        return t->sp.unk_id();
    }
}

// Feeds the trainer one line of a text file per sentence (the file is never named in the model).
class LineIterator : public sentencepiece::SentenceIterator {
  public:
    explicit LineIterator(const char *path) : in_(path, std::ios::binary) {
        if (!in_) status_ = sentencepiece::util::Status(sentencepiece::util::StatusCode::kNotFound,
                                                         std::string(path) + ": cannot open");
        Next();
    }
    bool done() const override { return done_; }
    void Next() override {
        if (!in_ || !std::getline(in_, line_)) done_ = true;
    }
    const std::string &value() const override { return line_; }
    sentencepiece::util::Status status() const override { return status_; }

  private:
    std::ifstream in_;
    std::string line_;
    bool done_ = false;
    sentencepiece::util::Status status_;
};

// LLaMA's own trainer settings (as read from the released tokenizer.model's trainer_spec and
// normalizer_spec): BPE, byte fallback, digits split, dummy prefix, whitespace kept as is,
// identity normalisation, unk=0 bos=1 eos=2 and no pad id.
static std::string train_args(int vocab_size, int threads, int max_sentence_length) {
    char args[1024];
    snprintf(args, sizeof args,
             "--model_type=bpe --vocab_size=%d --byte_fallback=true --split_digits=true "
             "--add_dummy_prefix=true --remove_extra_whitespaces=false --normalization_rule_name=identity "
             "--allow_whitespace_only_pieces=true --split_by_unicode_script=true --split_by_whitespace=true "
             "--character_coverage=0.99995 --max_sentence_length=%d --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 "
             "--hard_vocab_limit=false --num_threads=%d "
             "--shuffle_input_sentence=true --input_sentence_size=2000000",
             vocab_size, max_sentence_length, threads > 0 ? threads : 1);
    return args;
}

// The trained model records trainer_spec.num_threads (field 16 of field 2); dropping it makes
// the .model bytes independent of the thread count (sentencepiece reads the default back).
static std::string without_num_threads(const std::string &model) {
    std::vector<PbField> top;
    if (!pb_fields(model, top)) return model;
    std::string out;
    for (const PbField &f : top) {
        std::vector<PbField> in;
        std::string val = f.wire == 2 ? model.substr(f.val_begin, f.val_end - f.val_begin) : "";
        if (f.num != 2 || f.wire != 2 || !pb_fields(val, in)) {
            out.append(model, f.begin, f.end - f.begin);
            continue;
        }
        std::string spec;
        for (const PbField &g : in)
            if (g.num != 16) spec.append(val, g.begin, g.end - g.begin);
        pb_put_varint(out, (2 << 3) | 2);
        pb_put_varint(out, spec.size());
        out += spec;
    }
    return out;
}

extern "C" int lqa_tok_train(const char *input_txt, const char *out_model, int vocab_size, uint64_t seed,
                             int threads, lqa_err *err) {
    try {
        sentencepiece::logging::SetMinLogLevel(lqa_log_get_level() >= LQA_LOG_DEBUG ? 0 : 1);
        sentencepiece::SetRandomGeneratorSeed((unsigned int)(seed ^ (seed >> 32)));
        LineIterator it(input_txt);
        if (!it.status().ok()) return lqa_err_set(err, "%s: cannot open training text", input_txt);
        std::string model;
        auto st = sentencepiece::SentencePieceTrainer::Train(train_args(vocab_size, threads, LQA_TOK_MAX_SENTENCE),
                                                             &it, &model);
        if (!st.ok()) return lqa_err_set(err, "%s: tokenizer training failed: %s", input_txt, st.ToString().c_str());
        model = without_num_threads(model);
        return lqa_write_file_atomic(out_model, model.data(), model.size(), err);
    } catch (const std::exception &e) {
        return lqa_err_set(err, "%s: tokenizer training failed: %s", input_txt, e.what());
    } catch (...) {
        return lqa_err_set(err, "%s: tokenizer training failed (unknown exception)", input_txt);
    }
}
