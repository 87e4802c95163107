/**
 * The node bed itself: pod traffic cannot leave the machine (read from the rules, never tried),
 * the node runs pods from the imported images, and a second node bed on the machine is refused
 * with the owner named.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { containmentProblems, containmentRule, readContainment } from '../testbed/node/host.ts';
import { startNodeBed } from '../testbed/node/index.ts';
import { readLock } from '../testbed/node/lock.ts';
import {
  type NodeTestWorld,
  nodeTestWorld,
  podLog,
  recordTiming,
  secondsSince,
  waitFor,
  waitForReadyPod,
} from './harness.ts';

let test: NodeTestWorld;
let namespace: string;

before(async () => {
  test = await nodeTestWorld();
  namespace = await test.node.bed.newNamespace('node-bed');
});
after(async () => {
  await test.finish();
});

describe('node bed', () => {
  it('keeps pod traffic on the machine: the FORWARD drop is first in both families and the Service range goes to cni0', async () => {
    const state = await readContainment();
    assert.deepEqual(containmentProblems(state), []);
    assert.equal(state.forward.iptables[0], containmentRule);
    assert.equal(state.forward.ip6tables[0], containmentRule);
    assert.match(state.serviceRoute, /^10\.0\.0\.0\/24 dev cni0\b/);
  });

  it('runs a pod from the imported stand-in images, with the API server reachable through the kubernetes Service', async () => {
    const started = performance.now();
    await test.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'web', labels: { app: 'web' } },
        spec: {
          containers: [
            // nginx:1.14.2 as the seeds name it: busybox httpd serving on port 80.
            {
              name: 'web',
              image: 'nginx:1.14.2',
              readinessProbe: { httpGet: { path: '/', port: 80 }, periodSeconds: 1 },
            },
            {
              // In-cluster config as every smk role uses it: the kubernetes Service (kube-proxy) and the
              // ServiceAccount's token and CA, from Node in the smk image.
              name: 'client',
              image: `${test.node.smkImage.repository}:${test.node.smkImage.tag}`,
              imagePullPolicy: 'Never',
              command: [
                'node',
                '-e',
                [
                  "const fs = require('node:fs'), https = require('node:https');",
                  "const dir = '/var/run/secrets/kubernetes.io/serviceaccount/';",
                  "const url = 'https://' + process.env.KUBERNETES_SERVICE_HOST + ':' + process.env.KUBERNETES_SERVICE_PORT + '/version';",
                  "https.get(url, { ca: fs.readFileSync(dir + 'ca.crt'), headers: { authorization: 'Bearer ' + fs.readFileSync(dir + 'token', 'utf8') } }, (res) => {",
                  "  let body = ''; res.on('data', (chunk) => { body += chunk; }); res.on('end', () => console.log('status', res.statusCode, JSON.parse(body).gitVersion));",
                  "}).on('error', (error) => console.log('error', error.message));",
                  'setInterval(() => {}, 1 << 30);',
                ].join('\n'),
              ],
            },
          ],
        },
      },
    });
    const pod = await waitForReadyPod(test, namespace, 'app=web');
    recordTiming('stand-in images pod apply→Ready', secondsSince(started));
    assert.equal(pod.spec?.nodeName, test.node.nodeName);
    const log = await waitFor('the client container to reach the API server', 60_000, async () => {
      const text = await podLog(test, namespace, 'web', 'client');
      return text.trim() === '' ? undefined : text;
    });
    assert.match(log, /^status 200 v1\.35\.\d+/m);
  });

  it('refuses a second node bed on the machine, naming the one running', async () => {
    const owner = await readLock();
    assert.ok(owner, 'the running node bed holds the lock');
    await assert.rejects(startNodeBed({ progress: () => {} }), (error: Error) => {
      assert.equal(error.name, 'NodeBedBusyError');
      assert.match(
        error.message,
        new RegExp(`another node bed is running on this machine: pid ${owner.pid}\\b`),
      );
      assert.match(error.message, /kill -TERM/);
      return true;
    });
    // The refused start changed nothing: the lock still names the running bed.
    assert.equal((await readLock())?.pid, owner.pid);
  });
});
