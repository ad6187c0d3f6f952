// What owns the memory that appeared between two heap snapshots of one process: each object new in
// the second snapshot is charged to its top-most new dominator (the object whose going would free
// it), and those owners are listed by constructor, per unit (per held stream, per connection).
// "By constructor" alone (bench/profile.mjs) says that 47 contexts and 55 arrays appeared per
// stream; this says which objects keep them (decision 0034 found the async generators that way).
//
//   PROFILE_HEAP=1 node bench/profile.mjs      (keeps before/after.heapsnapshot in its directory)
//   node bench/heap-owners.mjs <before.heapsnapshot> <after.heapsnapshot> <count> [Constructor]
//
// With a constructor name it also prints the dominator subtree (retained bytes, by edge) of the
// first new object of that name. Objects are matched across the snapshots by V8's snapshot ids,
// which are stable for JS objects within one process (native objects such as module records may
// show up as new when they are not).
import { readFileSync } from 'node:fs';

const [beforePath, afterPath, countArgument, treeName] = process.argv.slice(2);
const count = Number(countArgument);
if (!beforePath || !afterPath || !(count > 0)) {
  console.error('usage: node bench/heap-owners.mjs <before.heapsnapshot> <after.heapsnapshot> <count> [Constructor]');
  process.exit(2);
}

const read = (path) => JSON.parse(readFileSync(path, 'utf8'));

const before = read(beforePath);
const oldIds = new Set();
{
  const fields = before.snapshot.meta.node_fields;
  const idAt = fields.indexOf('id');
  for (let index = 0; index < before.nodes.length; index += fields.length) oldIds.add(before.nodes[index + idAt]);
}

const snapshot = read(afterPath);
const { nodes, edges, strings } = snapshot;
const nodeFields = snapshot.snapshot.meta.node_fields;
const edgeFields = snapshot.snapshot.meta.edge_fields;
const nodeTypes = snapshot.snapshot.meta.node_types[0];
const edgeTypes = snapshot.snapshot.meta.edge_types[0];
const nodeCount = nodes.length / nodeFields.length;
const [typeAt, nameAt, idAt, sizeAt, edgeCountAt] = ['type', 'name', 'id', 'self_size', 'edge_count'].map((field) => nodeFields.indexOf(field));
const [edgeTypeAt, edgeNameAt, toAt] = ['type', 'name_or_index', 'to_node'].map((field) => edgeFields.indexOf(field));
const weak = edgeTypes.indexOf('weak');
const shortcut = edgeTypes.indexOf('shortcut');

const firstEdge = new Uint32Array(nodeCount + 1);
for (let node = 0, edge = 0; node < nodeCount; node++) {
  firstEdge[node] = edge;
  edge += nodes[node * nodeFields.length + edgeCountAt] * edgeFields.length;
  firstEdge[node + 1] = edge;
}
const sizeOf = (node) => nodes[node * nodeFields.length + sizeAt];
const isNew = (node) => !oldIds.has(nodes[node * nodeFields.length + idAt]);
function nameOf(node) {
  const type = nodeTypes[nodes[node * nodeFields.length + typeAt]];
  const name = strings[nodes[node * nodeFields.length + nameAt]];
  if (type === 'object' || type === 'native') return name;
  if (type === 'closure') return `closure ${name}`;
  return `(${type})`;
}
function edgeName(edge) {
  const type = edgeTypes[edges[edge + edgeTypeAt]];
  const name = edges[edge + edgeNameAt];
  return type === 'element' || type === 'hidden' ? `[${name}]` : strings[name];
}
/** Strong edges only: weak and shortcut edges keep nothing alive. */
function forEachChild(node, visit) {
  for (let edge = firstEdge[node]; edge < firstEdge[node + 1]; edge += edgeFields.length) {
    const type = edges[edge + edgeTypeAt];
    if (type !== weak && type !== shortcut) visit(edges[edge + toAt] / nodeFields.length, edge);
  }
}

// Depth-first postorder from the root (node 0), iteratively.
const postorder = new Int32Array(nodeCount).fill(-1);
const byPostorder = [];
{
  const visited = new Uint8Array(nodeCount);
  const stack = [0];
  const cursor = [firstEdge[0]];
  visited[0] = 1;
  while (stack.length > 0) {
    const node = stack[stack.length - 1];
    let edge = cursor[cursor.length - 1];
    let descended = false;
    while (edge < firstEdge[node + 1]) {
      const type = edges[edge + edgeTypeAt];
      const child = edges[edge + toAt] / nodeFields.length;
      edge += edgeFields.length;
      if (type === weak || type === shortcut || visited[child]) continue;
      visited[child] = 1;
      cursor[cursor.length - 1] = edge;
      stack.push(child);
      cursor.push(firstEdge[child]);
      descended = true;
      break;
    }
    if (!descended) {
      stack.pop();
      cursor.pop();
      postorder[node] = byPostorder.length;
      byPostorder.push(node);
    }
  }
}

// Immediate dominators (Cooper, Harvey and Kennedy's iterative algorithm).
const predecessors = Array.from({ length: nodeCount }, () => []);
for (let node = 0; node < nodeCount; node++) {
  if (postorder[node] < 0) continue;
  forEachChild(node, (child) => {
    if (postorder[child] >= 0) predecessors[child].push(node);
  });
}
const dominator = new Int32Array(nodeCount).fill(-1);
dominator[0] = 0;
function intersect(a, b) {
  while (a !== b) {
    while (postorder[a] < postorder[b]) a = dominator[a];
    while (postorder[b] < postorder[a]) b = dominator[b];
  }
  return a;
}
for (let changed = true; changed; ) {
  changed = false;
  for (let index = byPostorder.length - 1; index >= 0; index--) {
    const node = byPostorder[index];
    if (node === 0) continue;
    let candidate = -1;
    for (const predecessor of predecessors[node]) {
      if (dominator[predecessor] === -1) continue;
      candidate = candidate === -1 ? predecessor : intersect(predecessor, candidate);
    }
    if (candidate !== -1 && dominator[node] !== candidate) {
      dominator[node] = candidate;
      changed = true;
    }
  }
}

// Retained size of every node, from the leaves of the dominator tree up (postorder does it).
const retained = new Float64Array(nodeCount);
for (const node of byPostorder) {
  retained[node] += sizeOf(node);
  if (node !== 0) retained[dominator[node]] += retained[node];
}

// The owners: new objects whose dominator is old. Each new object is inside exactly one.
const owners = new Map();
let total = 0;
for (let node = 0; node < nodeCount; node++) {
  if (postorder[node] < 0 || !isNew(node)) continue;
  total += sizeOf(node);
  if (isNew(dominator[node]) && dominator[node] !== node) continue;
  const name = nameOf(node);
  const owner = owners.get(name) ?? { bytes: 0, objects: 0 };
  owner.bytes += retained[node];
  owner.objects++;
  owners.set(name, owner);
}
const kB = (bytes) => (bytes / count / 1024).toFixed(2).padStart(7);
console.log(`new and reachable: ${kB(total).trim()} kB per unit (${count} units); by owner (top-most new dominator), retained kB and owners per unit:`);
for (const [name, owner] of [...owners].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 30)) {
  console.log(`${kB(owner.bytes)} kB ${(owner.objects / count).toFixed(1).padStart(5)}  ${name}`);
}

if (treeName) {
  const children = new Map();
  for (let node = 1; node < nodeCount; node++) {
    if (postorder[node] < 0) continue;
    const parent = dominator[node];
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(node);
  }
  let root = -1;
  for (let node = 0; node < nodeCount && root === -1; node++) if (isNew(node) && nameOf(node) === treeName) root = node;
  if (root === -1) {
    console.log(`\nno new object named ${treeName}`);
  } else {
    const edgeBetween = (parent, child) => {
      let found = '(dominated)';
      forEachChild(parent, (target, edge) => {
        if (target === child && found === '(dominated)') found = edgeName(edge);
      });
      return found;
    };
    console.log(`\nwhat the first new ${treeName} retains (bytes; subtrees under 40 B left out):`);
    const show = (node, depth, label) => {
      if (depth > 4 || retained[node] < 40) return;
      console.log(`${'  '.repeat(depth)}${retained[node].toFixed(0).padStart(6)} ${label}: ${nameOf(node)}`);
      for (const child of (children.get(node) ?? []).sort((a, b) => retained[b] - retained[a])) show(child, depth + 1, edgeBetween(node, child));
    };
    show(root, 0, 'root');
  }
}
