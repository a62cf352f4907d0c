#!/usr/bin/env python3
"""Writes a LongAlpaca-shaped JSON array (one big array of {"instruction", "input", "output"}
records whose instruction embeds a long paper) of about SIZE_MB megabytes, streamed to disk so
the generator itself stays small. Usage: gen_longalpaca.py OUT.json SIZE_MB [SEED]"""
import json
import random
import sys

def main():
    out, size_mb = sys.argv[1], float(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
             for _ in range(5000)]
    target = int(size_mb * 1048576)
    written = 0
    with open(out, "w", encoding="utf-8") as f:
        f.write("[\n")
        i = 0
        while written < target:
            paras = []
            for _ in range(rng.randint(40, 160)):  # ~40 KB papers, as in LongAlpaca-12k
                paras.append(" ".join(rng.choice(words) for _ in range(rng.randint(30, 90))) + ".")
            paper = "\n\n".join(paras)
            rec = {"instruction": "Below is a paper. Memorize the paper and answer my question after the paper.\n"
                                  " The paper begins. \n" + paper + "\n Now the paper ends. \n"
                                  "What is the main finding of paper %d?" % i,
                   "input": "", "output": "The main finding is " + " ".join(rng.choice(words) for _ in range(40))}
            s = ("" if i == 0 else ",\n") + json.dumps(rec, ensure_ascii=False)
            f.write(s)
            written += len(s)
            i += 1
        f.write("\n]\n")
    print("%s: %d records, %.1f MB" % (out, i, written / 1048576))

if __name__ == "__main__":
    main()
