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
}
#include "dataset/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <new>
#include <string>
#include <vector>

struct lqa_tokenizer {
    sentencepiece::SentencePieceProcessor sp;
    char sha256[2 * LQA_SHA256_SIZE + 1];
};

extern "C" lqa_tokenizer *lqa_tok_load(const char *model_path, lqa_err *err) {
    lqa_tokenizer *t = nullptr;
    try {
        uint8_t digest[LQA_SHA256_SIZE];
        if (lqa_sha256_file(model_path, digest, err) != 0) return nullptr;
        t = new lqa_tokenizer();
        lqa_hex(digest, LQA_SHA256_SIZE, t->sha256);
        auto st = t->sp.Load(model_path);
        if (!st.ok()) {
            lqa_err_set(err, "%s: not a sentencepiece model: %s", model_path, st.ToString().c_str());
            delete t;
            return nullptr;
        }
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

extern "C" int lqa_tok_encode(const lqa_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n_ids,
                              lqa_err *err) {
    *ids = nullptr;
    *n_ids = 0;
    try {
        std::vector<int> out;
        auto st = t->sp.Encode(absl::string_view(text, len), &out);
        if (!st.ok()) return lqa_err_set(err, "tokenizer: encode failed: %s", st.ToString().c_str());
        // +1 so an empty result still gives a valid pointer for the caller to free
        int32_t *buf = (int32_t *)lqa_malloc((out.size() + 1) * sizeof(int32_t));
        for (size_t i = 0; i < out.size(); i++) buf[i] = out[i];
        *ids = buf;
        *n_ids = out.size();
        return 0;
    } catch (const std::exception &e) {
        return lqa_err_set(err, "tokenizer: encode failed: %s", e.what());
    } catch (...) {
        return lqa_err_set(err, "tokenizer: encode failed (unknown exception)");
    }
}

extern "C" int lqa_tok_encode_offsets(const lqa_tokenizer *t, const char *text, size_t len, int32_t **ids,
                                      uint32_t **begins, size_t *n_ids, lqa_err *err) {
    *ids = nullptr;
    *begins = nullptr;
    *n_ids = 0;
    if (len > UINT32_MAX) return lqa_err_set(err, "tokenizer: text of %zu bytes is over the 4 GiB offset limit", len);
    try {
        sentencepiece::ImmutableSentencePieceText spt;
        auto st = t->sp.Encode(absl::string_view(text, len), spt.mutable_proto());
        if (!st.ok()) return lqa_err_set(err, "tokenizer: encode failed: %s", st.ToString().c_str());
        size_t n = spt.pieces_size();
        int32_t *out_ids = (int32_t *)lqa_malloc((n + 1) * sizeof(int32_t));
        uint32_t *out_begin = (uint32_t *)lqa_malloc((n + 1) * sizeof(uint32_t));
        uint32_t last = 0;
        for (size_t i = 0; i < n; i++) {
            auto piece = spt.pieces((int)i);
            out_ids[i] = (int32_t)piece.id();
            // keep offsets non-decreasing (byte-fallback pieces of one character share a span)
            last = piece.begin() > last ? piece.begin() : last;
            out_begin[i] = last;
        }
        *ids = out_ids;
        *begins = out_begin;
        *n_ids = n;
        return 0;
    } catch (const std::exception &e) {
        return lqa_err_set(err, "tokenizer: encode failed: %s", e.what());
    } catch (...) {
        return lqa_err_set(err, "tokenizer: encode failed (unknown exception)");
    }
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
             "--hard_vocab_limit=false --num_threads=%d --minloglevel=2 "
             "--shuffle_input_sentence=true --input_sentence_size=2000000",
             vocab_size, max_sentence_length, threads > 0 ? threads : 1);
    return args;
}

extern "C" int lqa_tok_train(const char *input_txt, const char *out_model, int vocab_size, uint64_t seed,
                             int threads, lqa_err *err) {
    try {
        sentencepiece::SetRandomGeneratorSeed((unsigned int)(seed ^ (seed >> 32)));
        LineIterator it(input_txt);
        if (!it.status().ok()) return lqa_err_set(err, "%s: cannot open training text", input_txt);
        std::string model;
        auto st = sentencepiece::SentencePieceTrainer::Train(train_args(vocab_size, threads, LQA_TOK_MAX_SENTENCE),
                                                             &it, &model);
        if (!st.ok()) return lqa_err_set(err, "%s: tokenizer training failed: %s", input_txt, st.ToString().c_str());
        return lqa_write_file_atomic(out_model, model.data(), model.size(), err);
    } catch (const std::exception &e) {
        return lqa_err_set(err, "%s: tokenizer training failed: %s", input_txt, e.what());
    } catch (...) {
        return lqa_err_set(err, "%s: tokenizer training failed (unknown exception)", input_txt);
    }
}
