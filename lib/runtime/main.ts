import { loadFunctions } from "./apps.ts";
import { serve } from "./serve.ts";

/** Process entry of the all-in-one server (and of `npm run dev`): FUNCTION_TARGET picks the function, default all. */
await serve((config) => loadFunctions(config.functionTarget));
