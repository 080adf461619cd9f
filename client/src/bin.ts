// The packed package's `signoff` command (client/dist/signoff.js is the ncc bundle of this file).
import { run } from "./main.ts";

void run();
