// Reads a JSON array of Kubernetes objects on stdin and validates each against Istio's CRD schema
// (@kubernetes-models/istio, generated from Istio's own CRDs). Prints one JSON result per object.
const documents = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => { text += chunk; });
  process.stdin.on("end", () => resolve(text));
}));

const results = [];
for (const doc of documents) {
  const [group, version] = doc.apiVersion.split("/");
  const result = { kind: doc.kind, name: doc.metadata?.name ?? null, error: null };
  try {
    const module = await import(`@kubernetes-models/istio/${group}/${version}/${doc.kind}`);
    new module[doc.kind](doc).validate();
  } catch (error) {
    result.error = error.message;
  }
  results.push(result);
}
process.stdout.write(JSON.stringify(results));
