import { parseMountAttributes } from '../src/csi/attributes.ts';
import { parseMountSpec } from '../src/core/spec.ts';
const objs = (p: string) => [0,1,2,3,4].map((i) => i < 2
  ? `- {objectName: "${p}/secret-${i}", objectType: secretsmanager, jmesPath: [{path: username, objectAlias: user-${i}}, {path: password, objectAlias: pass-${i}}]}`
  : `- {objectName: "${p}/secret-${i}", objectType: secretsmanager}`).join('\n');
const req = (p: string) => JSON.stringify({ objects: objs(p), region: 'us-east-1', secretProviderClass: 'bench',
  'csi.storage.k8s.io/pod.name': 'app-0', 'csi.storage.k8s.io/pod.namespace': 'ns', 'csi.storage.k8s.io/serviceAccount.name': 'app',
  'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({ 'sts.amazonaws.com': { token: 'x'.repeat(900) } }) });
for (let i = 0; i < 300; i++) {
  const r = req(`b${i}`);
  const t0 = performance.now();
  const a = parseMountAttributes(r);
  const t1 = performance.now();
  const p = a.parameters;
  parseMountSpec({ objects: p.objects!, region: p.region, failoverRegion: p.failoverRegion, pathTranslation: p.pathTranslation }, a.subject, {});
  const t2 = performance.now();
  if (i % 50 === 0 || i < 4) console.log(`attrs ${(t1 - t0).toFixed(2)} spec ${(t2 - t1).toFixed(2)}`);
}
