// Renders the chat template file given as the first argument with the JSON context read from
// stdin, using @huggingface/jinja, and writes the result to stdout unchanged.
import { readFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";

const source = readFileSync(process.argv[2], "utf8");
const context = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(new Template(source).render(context));
