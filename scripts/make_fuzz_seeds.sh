#!/usr/bin/env bash
# Regenerates the real-file part of the fuzz seed corpora (tests/fuzz_corpus/<target>/) with
# slope itself: a tiny corpus prepared with the char and the BPE tokenizer, a tiny G2P
# dictionary, and a two-step training run of a GPT and of a seq2seq model. Hand-made edge cases
# (files named edge-*) are kept as they are.
#
#   scripts/make_fuzz_seeds.sh [SLOPE_BINARY]     (default: build/slope)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
slope=${1:-$root/build/slope}
corpus=$root/tests/fuzz_corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

text=$work/text.txt
for i in $(seq 1 40); do
  echo "First Citizen: before we proceed any further, hear me speak $i."
  echo "All: speak, speak. You are all resolved rather to die than to famish? ñ é ü 東"
done >"$text"
cat >"$work/cmudict.txt" <<'DICT'
;;; a tiny CMU dictionary
A  AH0
A(2)  EY1
ABLE  EY1 B AH0 L
BAKE  B EY1 K
CAT  K AE1 T
DOG  D AO1 G
EVE  IY1 V
FISH  F IH1 SH
GO  G OW1
HAT  HH AE1 T
DICT

q() { "$slope" "$@" >/dev/null 2>&1 || { echo "failed: slope $*" >&2; exit 1; }; }
q prepare --input "$text" --out "$work/char" --val-fraction 0.2
q prepare --input "$text" --out "$work/bpe" --tokenizer bpe --vocab-size 320 --threads 1
q prepare --task g2p --input "$work/cmudict.txt" --out "$work/g2p" --val-fraction 0.2 \
  --test-fraction 0.2
q train --data "$work/char" --out "$work/gpt" --n-layer 1 --n-head 2 --n-embd 8 \
  --block-size 8 --batch-size 2 --max-iters 2 --warmup-iters 1 --eval-interval 1 --eval-iters 1 --threads 1
q train --arch seq2seq --pos alibi-learned --data "$work/g2p" --out "$work/s2s" --n-layer 1 \
  --n-dec-layer 1 --n-head 2 --n-embd 8 --batch-size 2 --max-iters 2 --warmup-iters 1 --eval-interval 1 \
  --eval-iters 1 --threads 1

seed() {  # seed TARGET NAME FILE
  mkdir -p "$corpus/$1"
  cp "$3" "$corpus/$1/$2"
}
seed fuzz_safetensors gpt-model.safetensors "$work/gpt/model.safetensors"
seed fuzz_safetensors gpt-optimizer.safetensors "$work/gpt/optimizer.safetensors"
seed fuzz_safetensors s2s-model.safetensors "$work/s2s/model.safetensors"
q train --data "$work/char" --out "$work/mpt" --bias false --n-layer 1 --n-head 2 --n-embd 8 \
  --block-size 8 --batch-size 2 --max-iters 2 --warmup-iters 1 --eval-interval 1 --eval-iters 1 --threads 1
q export --format gguf "$work/mpt" "$work/mpt-f32.gguf"
q export --format gguf --dtype f16 "$work/mpt" "$work/mpt-f16.gguf"
seed fuzz_gguf mpt-f32.gguf "$work/mpt-f32.gguf"
seed fuzz_gguf mpt-f16.gguf "$work/mpt-f16.gguf"
seed fuzz_model_config gpt-config.json "$work/gpt/config.json"
seed fuzz_model_config s2s-config.json "$work/s2s/config.json"
seed fuzz_train_state gpt-train_state.json "$work/gpt/train_state.json"
seed fuzz_train_state s2s-train_state.json "$work/s2s/train_state.json"
seed fuzz_token_shard char-val.bin "$work/char/val.bin"
seed fuzz_token_shard bpe-val.bin "$work/bpe/val.bin"
seed fuzz_pair_shard g2p-train.bin "$work/g2p/train.bin"
seed fuzz_pair_shard g2p-val.bin "$work/g2p/val.bin"
seed fuzz_prepared_meta char-meta.json "$work/char/meta.json"
seed fuzz_prepared_meta g2p-meta.json "$work/g2p/meta.json"
seed fuzz_char_tokenizer char-tokenizer.json "$work/char/tokenizer/tokenizer.json"
seed fuzz_sentencepiece bpe.model "$work/bpe/tokenizer/bpe.model"
seed fuzz_cmudict cmudict.txt <(printf '\0'; cat "$work/cmudict.txt")
seed fuzz_cmudict cmudict-stress.txt <(printf '\1'; cat "$work/cmudict.txt")
# corpus_split: byte 0 the fraction, byte 1 the mode, 8 bytes of seed, then the text.
seed fuzz_corpus_split text-auto.bin <(printf '\x1a\x00seedseed'; head -c 600 "$text")
seed fuzz_corpus_split text-tail.bin <(printf '\x40\x02seedseed'; head -c 300 "$text")
seed fuzz_corpus_split names-lines.bin <(printf '\x1a\x01seedseed'; printf 'emma\nolivia\nava\r\nisabella\n\nmia\n')
echo "seeds written under $corpus"
