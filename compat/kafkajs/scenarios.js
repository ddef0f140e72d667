'use strict'
// kafkajs 2.2.4 against a running strom broker.
//
//   node scenarios.js BOOTSTRAP [scenario...]
//
// Prints one `RESULT kafkajs <scenario> PASS|FAIL [detail]` line per scenario
// and exits non-zero when any scenario failed. Every scenario uses its own
// topic (and group), waits on conditions with deadlines, and asserts what it
// got back. Env: KAFKAJS_LOG=debug|info|warn|error (default: nothing),
// STROM_LOG_DIRS=<data dir>/logs enables the on-disk checks (the broker
// keeps batches byte for byte as produced, so the stored batch header shows
// the codec the client really used).

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'

const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const {
  Kafka,
  logLevel,
  CompressionTypes,
  CompressionCodecs,
  Partitioners,
  ConfigResourceTypes,
  AssignerProtocol,
} = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const LZ4Codec = require('@2l/kafkajs-lz4')
const zstd = require('@mongodb-js/zstd')

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  compress: async encoder => zstd.compress(encoder.buffer, 3),
  decompress: async buffer => zstd.decompress(buffer),
})

// STROM_CLIENT_SUFFIX names the target in RESULT lines (e.g. "-3-nodes").
const CLIENT = 'kafkajs' + (process.env.STROM_CLIENT_SUFFIX || '')
const bootstrap = process.argv[2] || process.env.STROM_BOOTSTRAP
if (!bootstrap) {
  console.error('usage: node scenarios.js BOOTSTRAP [scenario...]')
  process.exit(2)
}
const only = process.argv.slice(3)

const LOG_LEVELS = {
  debug: logLevel.DEBUG,
  info: logLevel.INFO,
  warn: logLevel.WARN,
  error: logLevel.ERROR,
}
const kafka = new Kafka({
  clientId: 'strom-compat-kafkajs',
  brokers: bootstrap.split(','),
  logLevel: LOG_LEVELS[(process.env.KAFKAJS_LOG || '').toLowerCase()] ?? logLevel.NOTHING,
  retry: { initialRetryTime: 100, retries: 8 },
  connectionTimeout: 3000,
  requestTimeout: 15000,
})

// Consumers: short heartbeats so a rebalance is noticed quickly.
const CONSUMER_DEFAULTS = {
  sessionTimeout: 10000,
  rebalanceTimeout: 10000,
  heartbeatInterval: 300,
  maxWaitTimeInMs: 250,
  retry: { initialRetryTime: 100, retries: 8 },
}

let admin

// ---------------------------------------------------------------- helpers

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms))
}

// Poll `cond` (sync or async) until it returns a truthy value or the deadline
// passes; throws `what` with the last state on timeout.
async function waitFor(what, cond, timeoutMs = 15000, everyMs = 50) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    last = await cond()
    if (last) return last
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

function withTimeout(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`scenario timed out after ${ms} ms (${what})`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

async function createTopic(topic, numPartitions, configEntries) {
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions, replicationFactor: 1, configEntries }],
    waitForLeaders: true,
  })
  assert.equal(created, true, `createTopics(${topic}) returned ${created}`)
}

function newProducer(opts = {}) {
  return kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, ...opts })
}

// Subscribe a fresh consumer of `groupId` to `topic` and collect messages
// until `done(received)` holds; returns what it received. The consumer is
// disconnected (LeaveGroup) before returning, also on timeout.
async function consume({ topic, groupId, done, timeoutMs = 20000, fromBeginning = true, opts = {}, runOpts = {}, beforeDisconnect }) {
  const consumer = kafka.consumer({ groupId, ...CONSUMER_DEFAULTS, ...opts })
  const received = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning })
    await consumer.run({
      ...runOpts,
      eachMessage: async ({ topic: t, partition, message }) => {
        received.push({ topic: t, partition, ...message })
      },
    })
    await waitFor(`messages on ${topic}`, () => done(received), timeoutMs).catch(e => {
      throw new Error(`${e.message} (received ${received.length})`)
    })
    if (beforeDisconnect) await beforeDisconnect(consumer, received)
    return received
  } finally {
    await consumer.disconnect()
  }
}

// Every stored batch of one partition, read from the broker's segment files.
function storedBatches(topic, partition) {
  const dir = path.join(process.env.STROM_LOG_DIRS, `${topic}-${partition}`)
  const batches = []
  for (const file of fs.readdirSync(dir).filter(f => f.endsWith('.log')).sort()) {
    const buf = fs.readFileSync(path.join(dir, file))
    let pos = 0
    while (pos + 61 <= buf.length) {
      const length = buf.readInt32BE(pos + 8)
      if (length <= 0) break
      batches.push({
        baseOffset: Number(buf.readBigInt64BE(pos)),
        magic: buf.readInt8(pos + 16),
        attributes: buf.readInt16BE(pos + 21),
        producerId: buf.readBigInt64BE(pos + 43),
        records: buf.readInt32BE(pos + 57),
      })
      pos += 12 + length
    }
  }
  return batches
}

function sortedNumbers(xs) {
  return [...xs].map(Number).sort((a, b) => a - b)
}

// -------------------------------------------------------------- scenarios

const scenarios = {}

scenarios.metadata = async () => {
  const topic = 'kjs-metadata'
  await createTopic(topic, 3)

  const cluster = await admin.describeCluster()
  assert.equal(cluster.brokers.length, 1, `brokers: ${JSON.stringify(cluster.brokers)}`)
  const [broker] = cluster.brokers
  assert.equal(`${broker.host}:${broker.port}`, bootstrap, 'advertised address')
  assert.equal(cluster.controller, broker.nodeId, 'controller is the one broker')
  assert.ok(cluster.clusterId && cluster.clusterId.length > 0, 'cluster id')

  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] })
  assert.equal(topics.length, 1)
  assert.equal(topics[0].name, topic)
  const parts = topics[0].partitions.sort((a, b) => a.partitionId - b.partitionId)
  assert.deepEqual(parts.map(p => p.partitionId), [0, 1, 2])
  for (const p of parts) {
    assert.equal(p.partitionErrorCode, 0)
    assert.equal(p.leader, broker.nodeId)
    assert.deepEqual(p.replicas, [broker.nodeId])
    assert.deepEqual(p.isr, [broker.nodeId])
  }
  assert.ok((await admin.listTopics()).includes(topic), 'listTopics has the topic')

  // Auto-creation: producing to an unknown topic creates it with num.partitions (1).
  const auto = 'kjs-metadata-auto'
  const producer = newProducer({ allowAutoTopicCreation: true })
  await producer.connect()
  try {
    const [meta] = await producer.send({ topic: auto, messages: [{ value: 'x' }] })
    assert.equal(meta.errorCode, 0)
  } finally {
    await producer.disconnect()
  }
  const autoMd = await admin.fetchTopicMetadata({ topics: [auto] })
  assert.equal(autoMd.topics[0].partitions.length, 1, 'auto-created topic has 1 partition')
  return `node ${broker.nodeId}, 3 partitions, auto-create ok`
}

scenarios['admin-topics'] = async () => {
  const topic = 'kjs-admin-topics'
  assert.ok(!(await admin.listTopics()).includes(topic), 'topic exists before create')
  await createTopic(topic, 2, [{ name: 'retention.ms', value: '3600000' }])
  const again = await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }] })
  assert.equal(again, false, 'creating an existing topic returns false (TOPIC_ALREADY_EXISTS)')
  assert.ok((await admin.listTopics()).includes(topic), 'listTopics has the new topic')

  await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] })
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  assert.equal(md.topics[0].partitions.length, 4, 'partitions after CreatePartitions')

  await admin.deleteTopics({ topics: [topic], timeout: 5000 })
  await waitFor('topic gone from listTopics', async () => !(await admin.listTopics()).includes(topic), 10000, 100)
  return 'create, duplicate create, create-partitions 2->4, delete'
}

scenarios['keyed-order'] = async () => {
  const topic = 'kjs-keyed-order'
  await createTopic(topic, 3)
  const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`)
  const total = 360
  const producer = newProducer()
  await producer.connect()
  const sentPartition = new Map()
  try {
    for (let i = 0; i < total; i += 12) {
      const messages = []
      for (let j = i; j < i + 12; j++) {
        const key = keys[j % keys.length]
        messages.push({ key, value: `${key}|${Math.floor(j / keys.length)}` })
      }
      const meta = await producer.send({ topic, messages })
      for (const m of meta) assert.equal(m.errorCode, 0)
    }
  } finally {
    await producer.disconnect()
  }

  const got = await consume({ topic, groupId: 'kjs-keyed-order-g', done: r => r.length >= total })
  assert.equal(got.length, total, `received ${got.length} of ${total}`)
  const byKey = new Map()
  const offsetsByPartition = new Map()
  for (const m of got) {
    const key = m.key.toString()
    const [vkey, seq] = m.value.toString().split('|')
    assert.equal(vkey, key, 'value belongs to its key')
    if (!byKey.has(key)) byKey.set(key, { partitions: new Set(), seqs: [] })
    byKey.get(key).partitions.add(m.partition)
    byKey.get(key).seqs.push(Number(seq))
    if (!offsetsByPartition.has(m.partition)) offsetsByPartition.set(m.partition, [])
    offsetsByPartition.get(m.partition).push(Number(m.offset))
  }
  assert.equal(byKey.size, keys.length)
  for (const [key, { partitions, seqs }] of byKey) {
    assert.equal(partitions.size, 1, `${key} seen on partitions ${[...partitions]}`)
    assert.deepEqual(seqs, Array.from({ length: total / keys.length }, (_, i) => i), `${key} order`)
    sentPartition.set(key, [...partitions][0])
  }
  for (const [p, offs] of offsetsByPartition) {
    assert.deepEqual(offs, offs.map((_, i) => i), `partition ${p} offsets dense and in order`)
  }
  const used = new Set(sentPartition.values())
  assert.ok(used.size >= 2, `keys spread over ${used.size} partition(s)`)
  return `${total} msgs, ${keys.length} keys over partitions ${sortedNumbers(used).join(',')}`
}

scenarios['headers-timestamps-nulls'] = async () => {
  const topic = 'kjs-headers-timestamps-nulls'
  await createTopic(topic, 1)
  const ts = Math.floor(Date.now() / 1000) * 1000 - 3600 * 1000 // an hour ago, whole second
  const big = crypto.randomBytes(500 * 1024)
  const producer = newProducer()
  await producer.connect()
  try {
    await producer.send({
      topic,
      messages: [
        {
          key: 'hdr',
          value: 'with-headers',
          timestamp: String(ts),
          headers: { 'trace-id': 'abc-123', bin: Buffer.from([0, 1, 2, 255]), multi: ['one', 'two'], empty: '' },
        },
        { key: null, value: 'null-key', timestamp: String(ts + 1) },
        { key: 'tombstone', value: null, timestamp: String(ts + 2) },
      ],
    })
    await producer.send({ topic, messages: [{ key: 'big', value: big, timestamp: String(ts + 3) }] })
  } finally {
    await producer.disconnect()
  }

  const got = await consume({ topic, groupId: 'kjs-htn-g', done: r => r.length >= 4 })
  assert.equal(got.length, 4)
  const [h, nk, tomb, b] = got
  assert.equal(h.key.toString(), 'hdr')
  assert.equal(h.value.toString(), 'with-headers')
  assert.equal(h.timestamp, String(ts), 'explicit timestamp kept')
  assert.deepEqual(Object.keys(h.headers).sort(), ['bin', 'empty', 'multi', 'trace-id'])
  assert.equal(h.headers['trace-id'].toString(), 'abc-123')
  assert.ok(h.headers.bin.equals(Buffer.from([0, 1, 2, 255])), 'binary header')
  assert.ok(Array.isArray(h.headers.multi), 'repeated header key comes back as an array')
  assert.deepEqual(h.headers.multi.map(String), ['one', 'two'])
  assert.equal(h.headers.empty.length, 0, 'empty header value')
  assert.equal(nk.key, null, 'null key')
  assert.equal(nk.value.toString(), 'null-key')
  assert.equal(nk.timestamp, String(ts + 1))
  assert.equal(tomb.key.toString(), 'tombstone')
  assert.equal(tomb.value, null, 'null value')
  assert.equal(tomb.timestamp, String(ts + 2))
  assert.equal(b.key.toString(), 'big')
  assert.equal(b.value.length, big.length, '500 KB value length')
  assert.ok(b.value.equals(big), '500 KB value bytes')
  assert.equal(b.timestamp, String(ts + 3))
  assert.deepEqual(got.map(m => m.offset), ['0', '1', '2', '3'])

  // Fetch limits smaller than the 500 KB batch: the batch comes whole anyway
  // (KIP-74), so the consumer still makes progress.
  const small = await consume({
    topic,
    groupId: 'kjs-htn-small-fetch-g',
    done: r => r.length >= 4,
    opts: { maxBytesPerPartition: 1024, maxBytes: 1024 },
  })
  assert.ok(small[3].value.equals(big), '500 KB value with 1 KB fetch limits')
  return 'headers (binary, repeated, empty), timestamps, null key, null value, 500 KB value (also with 1 KB fetch limits)'
}

function compressionScenario(name, type, codecId) {
  scenarios[`compression-${name}`] = async () => {
    const topic = `kjs-compression-${name}`
    await createTopic(topic, 1)
    const n = 200
    const values = Array.from({ length: n }, (_, i) => `${name}-${i}-` + 'the quick brown fox '.repeat(10))
    const producer = newProducer()
    await producer.connect()
    try {
      // Two batches: the second after the first is acknowledged.
      await producer.send({ topic, compression: type, messages: values.slice(0, 150).map((value, i) => ({ key: `k${i}`, value })) })
      await producer.send({ topic, compression: type, messages: values.slice(150).map((value, i) => ({ key: `k${150 + i}`, value })) })
    } finally {
      await producer.disconnect()
    }
    const got = await consume({ topic, groupId: `kjs-compression-${name}-g`, done: r => r.length >= n })
    assert.equal(got.length, n)
    got.forEach((m, i) => {
      assert.equal(m.offset, String(i))
      assert.equal(m.key.toString(), `k${i}`)
      assert.equal(m.value.toString(), values[i])
    })
    let disk = 'disk check skipped'
    if (process.env.STROM_LOG_DIRS) {
      const batches = storedBatches(topic, 0)
      assert.equal(batches.length, 2, `stored batches: ${JSON.stringify(batches, (k, v) => (typeof v === 'bigint' ? String(v) : v))}`)
      for (const batch of batches) {
        assert.equal(batch.magic, 2)
        assert.equal(batch.attributes & 7, codecId, `stored batch codec ${batch.attributes & 7}, want ${codecId}`)
      }
      disk = `2 stored batches with codec ${codecId}`
    }
    return `${n} msgs round trip, ${disk}`
  }
}
compressionScenario('gzip', CompressionTypes.GZIP, 1)
compressionScenario('snappy', CompressionTypes.Snappy, 2)
compressionScenario('lz4', CompressionTypes.LZ4, 3)
compressionScenario('zstd', CompressionTypes.ZSTD, 4)

scenarios.idempotent = async () => {
  const topic = 'kjs-idempotent'
  await createTopic(topic, 1)
  const sends = 10
  const perSend = 20
  const producer = newProducer({ idempotent: true, maxInFlightRequests: 1, retry: { initialRetryTime: 100, retries: Number.MAX_SAFE_INTEGER } })
  await producer.connect()
  try {
    for (let s = 0; s < sends; s++) {
      const messages = Array.from({ length: perSend }, (_, i) => ({ key: 'k', value: `m-${s * perSend + i}` }))
      const [meta] = await producer.send({ topic, acks: -1, messages })
      assert.equal(meta.errorCode, 0)
      assert.equal(meta.baseOffset, String(s * perSend), `send ${s} base offset`)
    }
  } finally {
    await producer.disconnect()
  }
  // A second idempotent producer gets its own producer id.
  const second = newProducer({ idempotent: true, maxInFlightRequests: 1, retry: { initialRetryTime: 100, retries: Number.MAX_SAFE_INTEGER } })
  await second.connect()
  try {
    await second.send({ topic, acks: -1, messages: [{ key: 'k', value: 'second' }] })
  } finally {
    await second.disconnect()
  }

  const total = sends * perSend + 1
  const got = await consume({ topic, groupId: 'kjs-idempotent-g', done: r => r.length >= total })
  assert.equal(got.length, total)
  const first = got.slice(0, sends * perSend)
  assert.deepEqual(first.map(m => m.value.toString()), first.map((_, i) => `m-${i}`), 'no loss, no duplicates, in order')
  const pid = first[0].batchContext.producerId
  assert.ok(BigInt(pid) >= 0n, `producer id ${pid}`)
  for (const m of first) {
    const ctx = m.batchContext
    assert.equal(ctx.producerId, pid, 'one producer id for the first producer')
    assert.ok(ctx.producerEpoch >= 0, `producer epoch ${ctx.producerEpoch}`)
    assert.equal(String(ctx.firstSequence), String(ctx.firstOffset), 'base sequence == base offset (one producer from offset 0)')
  }
  const last = got[total - 1]
  assert.equal(last.value.toString(), 'second')
  assert.notEqual(last.batchContext.producerId, pid, 'second producer has a different id')
  assert.equal(last.batchContext.firstSequence, 0, 'second producer starts at sequence 0')
  return `${total} msgs exactly once, pid ${pid} sequences 0..${sends * perSend - 1}, second pid ${last.batchContext.producerId}`
}

scenarios['group-commit-resume'] = async () => {
  const topic = 'kjs-group-commit-resume'
  const groupId = 'kjs-group-commit-resume-g'
  await createTopic(topic, 1)
  const n = 100
  const producer = newProducer()
  await producer.connect()
  try {
    await producer.send({ topic, messages: Array.from({ length: n }, (_, i) => ({ value: `m-${i}` })) })
  } finally {
    await producer.disconnect()
  }

  // First member (autoCommit off): read at least 40, commit offset 40 while
  // still in the group (OffsetCommit with its generation), leave.
  const first = await consume({
    topic,
    groupId,
    done: r => r.length >= 40,
    runOpts: { autoCommit: false },
    beforeDisconnect: consumer => consumer.commitOffsets([{ topic, partition: 0, offset: '40' }]),
  })
  assert.deepEqual(first.slice(0, 40).map(m => m.offset), Array.from({ length: 40 }, (_, i) => String(i)))
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] })
  assert.deepEqual(committed.partitions, [{ partition: 0, offset: '40', metadata: null }], 'committed offset')

  // A new member of the group resumes at the committed offset.
  const second = await consume({ topic, groupId, done: r => r.some(m => m.offset === String(n - 1)) })
  assert.equal(second[0].offset, '40', `resumed at ${second[0].offset}`)
  assert.deepEqual(second.map(m => m.value.toString()), Array.from({ length: n - 40 }, (_, i) => `m-${40 + i}`))
  return `committed 40, resumed at ${second[0].offset}, read ${second.length}`
}

scenarios['group-rebalance'] = async () => {
  const topic = 'kjs-group-rebalance'
  const groupId = 'kjs-group-rebalance-g'
  await createTopic(topic, 4)
  const members = [0, 1].map(i => {
    const consumer = kafka.consumer({ groupId, ...CONSUMER_DEFAULTS })
    const m = { i, consumer, joins: 0, assignment: [], received: [] }
    consumer.on(consumer.events.GROUP_JOIN, e => {
      m.joins += 1
      m.assignment = sortedNumbers(e.payload.memberAssignment[topic] || [])
    })
    return m
  })
  const start = async m => {
    await m.consumer.connect()
    await m.consumer.subscribe({ topics: [topic], fromBeginning: true })
    await m.consumer.run({
      eachMessage: async ({ partition, message }) => {
        m.received.push({ partition, value: message.value.toString() })
      },
    })
  }
  const [a, b] = members
  try {
    await start(a)
    await waitFor('first member owns all 4 partitions', () => a.assignment.length === 4)
    const aJoins = a.joins
    await start(b)
    await waitFor(
      `two members with disjoint assignments covering 0..3 (a=${a.assignment} b=${b.assignment})`,
      () => {
        if (a.joins <= aJoins || b.joins === 0) return false
        const all = [...a.assignment, ...b.assignment]
        return a.assignment.length > 0 && b.assignment.length > 0 && new Set(all).size === 4 && all.length === 4
      },
      30000,
    )
    // Messages to every partition reach exactly the member that owns it.
    const producer = newProducer()
    await producer.connect()
    try {
      await producer.send({ topic, messages: Array.from({ length: 40 }, (_, i) => ({ partition: i % 4, value: `m-${i}` })) })
    } finally {
      await producer.disconnect()
    }
    await waitFor('all 40 messages consumed', () => a.received.length + b.received.length >= 40, 20000)
    for (const m of members) {
      for (const r of m.received) {
        assert.ok(m.assignment.includes(r.partition), `member ${m.i} got partition ${r.partition}, owns ${m.assignment}`)
      }
    }
    const values = [...a.received, ...b.received].map(r => r.value).sort()
    assert.deepEqual(values, Array.from({ length: 40 }, (_, i) => `m-${i}`).sort(), 'every message once')
    return `a=[${a.assignment}] b=[${b.assignment}], 40 msgs split ${a.received.length}/${b.received.length}`
  } finally {
    await Promise.all(members.map(m => m.consumer.disconnect()))
  }
}

scenarios['offsets-for-times'] = async () => {
  const topic = 'kjs-offsets-for-times'
  await createTopic(topic, 2)
  const base = Math.floor(Date.now() / 1000) * 1000 - 600 * 1000
  const producer = newProducer()
  await producer.connect()
  try {
    // Partition 0: offsets 0..9 at base + i s, except offset 7 at base + 50 s
    // (out of order); partition 1: 3 messages at base + 20 s, 21 s, 22 s.
    for (let i = 0; i < 10; i++) {
      const ts = base + (i === 7 ? 50000 : i * 1000)
      await producer.send({ topic, messages: [{ partition: 0, value: `p0-${i}`, timestamp: String(ts) }] })
    }
    await producer.send({
      topic,
      messages: [0, 1, 2].map(i => ({ partition: 1, value: `p1-${i}`, timestamp: String(base + 20000 + i * 1000) })),
    })
  } finally {
    await producer.disconnect()
  }
  const at = async ts => {
    const res = await admin.fetchTopicOffsetsByTimestamp(topic, ts)
    return Object.fromEntries(res.map(({ partition, offset }) => [partition, offset]))
  }
  assert.deepEqual(await at(base - 1000), { 0: '0', 1: '0' }, 'before everything')
  assert.deepEqual(await at(base + 4500), { 0: '5', 1: '0' }, 'between messages')
  assert.deepEqual(await at(base + 5000), { 0: '5', 1: '0' }, 'exact timestamp')
  assert.deepEqual(await at(base + 21000), { 0: '7', 1: '1' }, 'first message at/after, out of order')
  assert.deepEqual(await at(base + 22500), { 0: '7', 1: '3' }, 'past partition 1 (-1 -> high watermark)')
  assert.deepEqual(await at(base + 60000), { 0: '10', 1: '3' }, 'past everything')
  const offsets = await admin.fetchTopicOffsets(topic)
  const byP = Object.fromEntries(offsets.map(o => [o.partition, [o.low, o.high]]))
  assert.deepEqual(byP, { 0: ['0', '10'], 1: ['0', '3'] }, 'earliest/latest')
  return 'by-timestamp lookups before/between/exact/out-of-order/after, earliest/latest'
}

scenarios['describe-list-groups'] = async () => {
  const topic = 'kjs-describe-list-groups'
  const groupId = 'kjs-describe-list-groups-g'
  await createTopic(topic, 2)
  const consumer = kafka.consumer({ groupId, ...CONSUMER_DEFAULTS })
  let joined = null
  consumer.on(consumer.events.GROUP_JOIN, e => {
    joined = e.payload
  })
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ autoCommit: false, eachMessage: async () => {} })
    await waitFor('member joined', () => joined)
    await consumer.commitOffsets([{ topic, partition: 0, offset: '0' }])

    const { groups } = await admin.listGroups()
    const listed = groups.find(g => g.groupId === groupId)
    assert.deepEqual(listed, { groupId, protocolType: 'consumer' }, `listGroups: ${JSON.stringify(groups)}`)

    const stable = await waitFor('group Stable', async () => {
      const d = (await admin.describeGroups([groupId])).groups[0]
      return d.state === 'Stable' ? d : null
    })
    assert.equal(stable.errorCode, 0)
    assert.equal(stable.groupId, groupId)
    assert.equal(stable.protocolType, 'consumer')
    assert.equal(stable.protocol, 'RoundRobinAssigner')
    assert.equal(stable.members.length, 1)
    const [member] = stable.members
    assert.equal(member.memberId, joined.memberId)
    assert.equal(member.clientId, 'strom-compat-kafkajs')
    assert.ok(member.clientHost && member.clientHost.length > 0, 'client host')
    const assignment = AssignerProtocol.MemberAssignment.decode(member.memberAssignment)
    assert.deepEqual(sortedNumbers(assignment.assignment[topic]), [0, 1], 'member assignment')
    const metadata = AssignerProtocol.MemberMetadata.decode(member.memberMetadata)
    assert.deepEqual(metadata.topics, [topic], 'member metadata topics')
  } finally {
    await consumer.disconnect()
  }

  const empty = await waitFor('group Empty after leave', async () => {
    const d = (await admin.describeGroups([groupId])).groups[0]
    return d.state === 'Empty' ? d : null
  })
  assert.equal(empty.members.length, 0)

  const res = await admin.deleteGroups([groupId])
  assert.deepEqual(res.map(r => [r.groupId, r.errorCode]), [[groupId, 0]])
  const after = (await admin.listGroups()).groups.map(g => g.groupId)
  assert.ok(!after.includes(groupId), 'deleted group is not listed')
  const [offs] = await admin.fetchOffsets({ groupId, topics: [topic] })
  assert.ok(offs.partitions.every(p => p.offset === '-1'), `offsets after delete: ${JSON.stringify(offs.partitions)}`)
  return 'list (consumer), describe Stable with member+assignment, Empty after leave, delete'
}

scenarios['describe-configs'] = async () => {
  const topic = 'kjs-describe-configs'
  await createTopic(topic, 1, [
    { name: 'cleanup.policy', value: 'compact' },
    { name: 'retention.ms', value: '7200000' },
  ])
  const describeTopic = async () => {
    const res = await admin.describeConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
      includeSynonyms: false,
    })
    assert.equal(res.resources.length, 1)
    const [r] = res.resources
    assert.equal(r.errorCode, 0)
    return Object.fromEntries(r.configEntries.map(e => [e.configName, e]))
  }
  let cfg = await describeTopic()
  assert.equal(cfg['retention.ms']?.configValue, '7200000', 'retention.ms')
  assert.equal(cfg['retention.ms'].isDefault, false)
  assert.equal(cfg['cleanup.policy']?.configValue, 'compact', 'cleanup.policy')
  assert.equal(cfg['cleanup.policy'].isDefault, false)
  for (const key of ['segment.bytes', 'max.message.bytes', 'retention.bytes', 'min.insync.replicas']) {
    assert.ok(cfg[key], `${key} described`)
    assert.equal(cfg[key].isDefault, true, `${key} isDefault`)
  }

  // Legacy AlterConfigs replaces the topic's whole override set.
  await admin.alterConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
  })
  cfg = await describeTopic()
  assert.equal(cfg['retention.ms'].configValue, '3600000', 'retention.ms after alter')
  assert.equal(cfg['cleanup.policy'].configValue, 'delete', 'cleanup.policy back to default after non-incremental alter')
  assert.equal(cfg['cleanup.policy'].isDefault, true)

  // Broker resource.
  const { brokers } = await admin.describeCluster()
  const res = await admin.describeConfigs({
    resources: [{ type: ConfigResourceTypes.BROKER, name: String(brokers[0].nodeId) }],
    includeSynonyms: false,
  })
  const bcfg = Object.fromEntries(res.resources[0].configEntries.map(e => [e.configName, e.configValue]))
  assert.equal(bcfg['num.partitions'], '1', 'broker num.partitions')
  assert.equal(bcfg['group.initial.rebalance.delay.ms'], '0', 'broker --set value')
  return 'topic overrides + defaults, AlterConfigs replace semantics, broker configs'
}

// ---------------------------------------------------------- transactions
//
// A transactional producer (transactionalId unique per run) against
// read_committed (kafkajs' default, readUncommitted: false) and
// read_uncommitted consumers. kafkajs has no assign() and no position(): a
// read goes to the end of the log with a fresh group that commits after
// every batch, until the expected records arrived AND the group's committed
// offset on every partition reached the high watermark (the consumer
// stepped over every marker; anything it should not see would have come).

const RUN = crypto.randomBytes(4).toString('hex')

async function txnProducer(transactionalId) {
  const producer = newProducer({ transactionalId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 60000 })
  await producer.connect()
  return producer
}

async function highWatermarks(topic) {
  const offs = await admin.fetchTopicOffsets(topic)
  return Object.fromEntries(offs.map(o => [o.partition, Number(o.high)]))
}

async function readToEnd(topic, { readUncommitted, n }) {
  const groupId = `${topic}-read-${readUncommitted ? 'ru' : 'rc'}-${crypto.randomBytes(3).toString('hex')}`
  const hw = await highWatermarks(topic)
  let committed = {}
  const received = await consume({
    topic,
    groupId,
    opts: { readUncommitted },
    runOpts: { autoCommitThreshold: 1 },
    done: async got => {
      if (got.length < n) return false
      const [offs] = await admin.fetchOffsets({ groupId, topics: [topic] })
      committed = Object.fromEntries(offs.partitions.map(p => [p.partition, Number(p.offset)]))
      return Object.entries(hw).every(([p, h]) => committed[p] >= h)
    },
  }).catch(e => {
    throw new Error(`${readUncommitted ? 'read_uncommitted' : 'read_committed'} read of ${topic}: ${e.message}, committed ${JSON.stringify(committed)}, high watermarks ${JSON.stringify(hw)}`)
  })
  return received
}

// {partition: [values]} in consumed order, checking that offsets strictly increase.
function valuesByPartition(received, what) {
  const out = {}
  const last = {}
  for (const m of received) {
    const off = Number(m.offset)
    assert.ok(last[m.partition] === undefined || last[m.partition] < off, `${what}: partition ${m.partition} offset ${off} after ${last[m.partition]}`)
    last[m.partition] = off
    ;(out[m.partition] ||= []).push(m.value.toString())
  }
  return out
}

scenarios['txn-commit'] = async () => {
  const topic = `kjs-txn-commit-${RUN}`
  await createTopic(topic, 2)
  const values = { 0: [], 1: [] }
  for (const p of [0, 1]) for (let i = 0; i < 10; i++) values[p].push(`commit-${p}-${i}`)
  const producer = await txnProducer(`${topic}-txn`)
  try {
    const txn = await producer.transaction()
    const acks = await txn.send({
      topic,
      messages: [0, 1].flatMap(p => values[p].map(value => ({ partition: p, value }))),
    })
    assert.deepEqual(acks.map(a => [a.partition, a.baseOffset]).sort(), [[0, '0'], [1, '0']], `acks ${JSON.stringify(acks)}`)
    // Open transaction: read_uncommitted gets all 20; a read_committed group
    // fetching over the same time and longer, nothing.
    const early = []
    const rc = kafka.consumer({ groupId: `${topic}-early-${RUN}`, ...CONSUMER_DEFAULTS, readUncommitted: false })
    await rc.connect()
    try {
      await rc.subscribe({ topics: [topic], fromBeginning: true })
      await rc.run({ eachMessage: async ({ partition, message }) => { early.push({ partition, ...message }) } })
      const unc = await readToEnd(topic, { readUncommitted: true, n: 20 })
      assert.deepEqual(valuesByPartition(unc, 'read_uncommitted, open'), values, 'read_uncommitted while the transaction is open')
      await sleep(1000)
      assert.equal(early.length, 0, `read_committed consumer got ${early.length} records of an open transaction`)
      await txn.commit()
      await waitFor('committed records on the waiting read_committed consumer', () => early.length >= 20, 20000)
      assert.deepEqual(valuesByPartition(early, 'read_committed after commit'), values, 'read_committed after the commit')
    } finally {
      await rc.disconnect()
    }
  } finally {
    await producer.disconnect()
  }
  for (const readUncommitted of [false, true]) {
    const got = await readToEnd(topic, { readUncommitted, n: 20 })
    assert.deepEqual(valuesByPartition(got, `readUncommitted=${readUncommitted}`), values, `readUncommitted=${readUncommitted}`)
  }
  assert.deepEqual(await highWatermarks(topic), { 0: 11, 1: 11 }, 'high watermarks (10 records + commit marker)')
  return '20 records over 2 partitions in one transaction: invisible read_committed while open, then exactly once under both isolation levels'
}

scenarios['txn-abort'] = async () => {
  const topic = `kjs-txn-abort-${RUN}`
  await createTopic(topic, 2)
  const committed = { 0: [], 1: [] }
  const all = { 0: [], 1: [] }
  const producer = await txnProducer(`${topic}-txn`)
  try {
    for (const name of ['first', 'second', 'third']) {
      const messages = []
      for (const p of [0, 1]) {
        for (let i = 0; i < 3; i++) {
          const value = `${name}-${p}-${i}`
          messages.push({ partition: p, value })
          all[p].push(value)
          if (name !== 'second') committed[p].push(value)
        }
      }
      const txn = await producer.transaction()
      await txn.send({ topic, messages })
      if (name === 'second') await txn.abort()
      else await txn.commit()
    }
  } finally {
    await producer.disconnect()
  }
  assert.deepEqual(valuesByPartition(await readToEnd(topic, { readUncommitted: false, n: 12 }), 'read_committed'), committed, 'read_committed')
  assert.deepEqual(valuesByPartition(await readToEnd(topic, { readUncommitted: true, n: 18 }), 'read_uncommitted'), all, 'read_uncommitted')
  assert.deepEqual(await highWatermarks(topic), { 0: 12, 1: 12 }, 'high watermarks (9 records + 3 markers)')
  return 'commit, abort, commit: read_committed saw the 12 committed in order and its committed offsets reached the high watermark, read_uncommitted all 18'
}

scenarios['txn-consume-transform-produce'] = async () => {
  const src = `kjs-txn-ctp-in-${RUN}`
  const dst = `kjs-txn-ctp-out-${RUN}`
  const groupId = `kjs-txn-ctp-g-${RUN}`
  await createTopic(src, 2)
  await createTopic(dst, 2)
  const n = 60
  const plain = newProducer()
  await plain.connect()
  try {
    await plain.send({
      topic: src,
      messages: Array.from({ length: n }, (_, i) => ({ partition: i % 2, key: `k${i}`, value: `in-${String(i).padStart(3, '0')}` })),
    })
  } finally {
    await plain.disconnect()
  }
  const producer = await txnProducer(`${groupId}-txn`)
  const consumer = kafka.consumer({ groupId, ...CONSUMER_DEFAULTS, readUncommitted: false })
  const committed = {} // partition -> next offset, as committed in a transaction
  let chunks = 0
  let commits = 0
  let aborts = 0
  let abortedRecords = 0
  let failure
  try {
    await consumer.connect()
    await consumer.subscribe({ topics: [src], fromBeginning: true })
    // kafkajs hands over whole fetched batches: each is cut into transactions
    // of at most 7 records; every third is aborted, and the consumer seeks
    // back to the last committed offset (the rest of the batch is dropped).
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isStale }) => {
        try {
          for (let i = 0; i < batch.messages.length && !isStale(); i += 7) {
            const chunk = batch.messages.slice(i, i + 7)
            chunks += 1
            const txn = await producer.transaction()
            await txn.send({
              topic: dst,
              messages: chunk.map(m => ({ partition: batch.partition, key: m.key, value: 'out-' + m.value.toString().slice(3) })),
            })
            const next = String(Number(chunk[chunk.length - 1].offset) + 1)
            await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: src, partitions: [{ partition: batch.partition, offset: next }] }] })
            if (chunks % 3 === 0) {
              await txn.abort()
              aborts += 1
              abortedRecords += chunk.length
              consumer.seek({ topic: src, partition: batch.partition, offset: String(committed[batch.partition] ?? 0) })
              return
            }
            await txn.commit()
            commits += 1
            committed[batch.partition] = Number(next)
            resolveOffset(chunk[chunk.length - 1].offset)
            await heartbeat()
          }
        } catch (e) {
          failure = failure || e
          throw e
        }
      },
    })
    await waitFor(`committed offsets at the input's end (committed ${JSON.stringify(committed)})`,
      () => failure || (committed[0] === n / 2 && committed[1] === n / 2), 60000)
    if (failure) throw failure
  } finally {
    await consumer.disconnect()
    await producer.disconnect()
  }
  assert.ok(aborts >= 1 && commits >= 2, `commits ${commits}, aborts ${aborts}`)
  const [offs] = await admin.fetchOffsets({ groupId, topics: [src] })
  const groupOffsets = Object.fromEntries(offs.partitions.map(p => [p.partition, Number(p.offset)]))
  assert.deepEqual(groupOffsets, { 0: n / 2, 1: n / 2 }, 'group offsets after the last transaction')

  const want = { 0: [], 1: [] }
  for (let i = 0; i < n; i++) want[i % 2].push(`out-${String(i).padStart(3, '0')}`)
  const got = valuesByPartition(await readToEnd(dst, { readUncommitted: false, n }), 'read_committed output')
  for (const p of Object.keys(got)) got[p].sort()
  assert.deepEqual(got, want, 'read_committed output: each input transformed exactly once')
  const unc = await readToEnd(dst, { readUncommitted: true, n: n + abortedRecords })
  assert.equal(unc.length, n + abortedRecords, 'read_uncommitted output (aborted transactions included)')
  return `${chunks} transactions, ${commits} committed, ${aborts} aborted (${abortedRecords} records rewound), output exactly once, group offsets at the input's end`
}

scenarios['txn-fencing'] = async () => {
  const topic = `kjs-txn-fencing-${RUN}`
  const tid = `${topic}-txn`
  await createTopic(topic, 1)
  const p1 = await txnProducer(tid)
  let p2
  let fenced
  try {
    let txn = await p1.transaction()
    await txn.send({ topic, messages: [{ value: 'p1-committed' }] })
    await txn.commit()
    txn = await p1.transaction()
    await txn.send({ topic, messages: [{ value: 'p1-open' }] })
    // Same transactionalId: InitProducerId aborts p1's open transaction and
    // bumps the epoch. kafkajs sends the transactional InitProducerId on the
    // first transaction(), not on connect().
    p2 = await txnProducer(tid)
    const txn2 = await p2.transaction()
    try {
      await txn.send({ topic, messages: [{ value: 'p1-zombie' }] })
      await txn.commit()
    } catch (e) {
      fenced = e
    }
    assert.ok(fenced, "the fenced producer's send and commit succeeded")
    const type = fenced.type || (fenced.cause && fenced.cause.type)
    assert.ok(['PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH'].includes(type), `fenced producer failed with ${fenced.name} ${type}: ${fenced.message}`)
    await txn2.send({ topic, messages: [{ value: 'p2-committed' }] })
    await txn2.commit()
  } finally {
    await p1.disconnect()
    if (p2) await p2.disconnect()
  }
  const got = await readToEnd(topic, { readUncommitted: false, n: 2 })
  assert.deepEqual(got.map(m => m.value.toString()), ['p1-committed', 'p2-committed'], 'read_committed after the fence')
  return `first producer fenced (${fenced.type || fenced.cause.type}), its open transaction aborted, the new one commits`
}

// ------------------------------------------------------------------ runner

const ORDER = [
  'metadata',
  'admin-topics',
  'keyed-order',
  'headers-timestamps-nulls',
  'compression-gzip',
  'compression-snappy',
  'compression-lz4',
  'compression-zstd',
  'idempotent',
  'group-commit-resume',
  'group-rebalance',
  'offsets-for-times',
  'describe-list-groups',
  'describe-configs',
  'txn-commit',
  'txn-abort',
  'txn-consume-transform-produce',
  'txn-fencing',
]

async function main() {
  admin = kafka.admin()
  await admin.connect()
  let failed = 0
  for (const name of ORDER) {
    if (only.length && !only.includes(name)) continue
    const t0 = Date.now()
    try {
      const detail = await withTimeout(scenarios[name](), 60000, name)
      console.log(`RESULT ${CLIENT} ${name} PASS ${detail} (${Date.now() - t0} ms)`)
    } catch (e) {
      failed += 1
      const msg = String(e && e.message ? e.message : e).replace(/\s+/g, ' ')
      console.log(`RESULT ${CLIENT} ${name} FAIL ${msg}`)
      if (process.env.KAFKAJS_LOG) console.error(e)
    }
  }
  await admin.disconnect()
  return failed
}

main().then(
  failed => process.exit(failed ? 1 : 0),
  e => {
    console.error(e)
    process.exit(1)
  },
)
