import { bundle } from "./bundle.ts";

/** `npm run build`: the bundles in dist/ that the image copies and `npm start` runs. */
await bundle("dist");
