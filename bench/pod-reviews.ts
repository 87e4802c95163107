/**
 * Reviews as the API server sends them for the pods of one ReplicaSet: equal but for the token
 * volume's name, which the ServiceAccount admission plugin picks per pod (`kube-api-access-` and 5
 * random characters, in the volume and in every container's mount of it). Sending one review over
 * and over would measure a cache no real rollout can hit; every load generator here gives each
 * request a pod of its own. Both injectors' answers are the same for every such pod (neither
 * names the token volume), so each answer is still compared with one expected answer.
 */

/** The token volume's name in src/webhook/fixtures/admission-review-3-containers.json. */
export const fixtureTokenVolume = 'kube-api-access-x7k2p';

/** The characters Kubernetes' rand.String uses. */
const alphabet = 'bcdfghjklmnpqrstvwxz2456789';

/** The token volume name of pod number `n` (distinct for n < 27^5). */
export function tokenVolumeOfPod(n: number): string {
  let suffix = '';
  let rest = n;
  for (let i = 0; i < 5; i++) {
    suffix += alphabet[rest % alphabet.length];
    rest = Math.floor(rest / alphabet.length);
  }
  return `kube-api-access-${suffix}`;
}

/**
 * Autocannon's `requests` option: each request the review of the next pod. `review` must hold the
 * fixture's token volume.
 */
export function autocannonPodRequests(review: string): { setupRequest(request: object): object }[] {
  if (!review.includes(fixtureTokenVolume)) throw new Error(`the review has no ${fixtureTokenVolume} volume`);
  const parts = review.split(fixtureTokenVolume);
  let next = 0;
  return [
    {
      setupRequest: (request) => ({ ...request, body: parts.join(tokenVolumeOfPod(next++)) }),
    },
  ];
}

/**
 * wrk Lua: `request()` sends the body in `wrk.body` as the review of the next pod (the same
 * names as tokenVolumeOfPod, built in Lua on wrk's own core).
 */
export const wrkPodRequestsLua = `
local pod_alphabet = "${alphabet}"
local pod_parts = nil
local pod_next = 0
local function pod_name(n)
  local s = ""
  for _ = 1, 5 do
    local i = n % #pod_alphabet
    s = s .. pod_alphabet:sub(i + 1, i + 1)
    n = math.floor(n / #pod_alphabet)
  end
  return "kube-api-access-" .. s
end
function request()
  if pod_parts == nil then
    pod_parts = {}
    local from = 1
    while true do
      local s, e = wrk.body:find("${fixtureTokenVolume}", from, true)
      if s == nil then break end
      table.insert(pod_parts, wrk.body:sub(from, s - 1))
      from = e + 1
    end
    table.insert(pod_parts, wrk.body:sub(from))
  end
  local name = pod_name(pod_next)
  pod_next = pod_next + 1
  return wrk.format(nil, nil, nil, table.concat(pod_parts, name))
end
`;
