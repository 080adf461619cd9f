// The Action's entry point (action.yml runs the ncc bundle of this file, action/dist/index.js).
import { run } from "./main.ts";

void run();
