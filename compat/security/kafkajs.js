'use strict'
// kafkajs 2.2.4 (compat/kafkajs's node_modules) over the TLS and SASL listeners.
//
//   node kafkajs.js SCENARIO...
//
// run.sh sets SEC_<LISTENER> (host:port of PLAINTEXT, SSL, SASL_PLAINTEXT,
// SASL_SSL, MTLS), SEC_CA, SEC_CLIENT_CERT, SEC_CLIENT_KEY, SEC_JWT_GOOD /
// SEC_JWT_OTHER_KEY (files holding RS256 tokens). One line
// `RESULT kafkajs <scenario> PASS|FAIL detail` per scenario; every scenario
// has a deadline. kafkajs speaks PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and
// OAUTHBEARER (an oauthBearerProvider returning a hand-made unsecured token or
// one of run.sh's signed tokens).
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'

const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const { Kafka, logLevel, Partitioners } = require(path.join(__dirname, '../kafkajs/node_modules/kafkajs'))

const CLIENT = 'kafkajs'
const E = process.env
// What Kafka 4.1 answers a refused SASL login (SaslAuthenticate error_message).
const PLAIN_REFUSED = 'Authentication failed: Invalid username or password'
const SCRAM_REFUSED = 'Authentication failed during authentication due to invalid credentials with SASL mechanism '

// scenario -> [listener, SASL mechanism, user, password, client cert, expected outcome]
const SCENARIOS = {
  ssl: ['SSL', null, null, null, false, 'ok'],
  'sasl-plaintext-plain': ['SASL_PLAINTEXT', 'PLAIN', 'alice', 'alice-secret', false, 'ok'],
  'sasl-plaintext-scram-sha-256': ['SASL_PLAINTEXT', 'SCRAM-SHA-256', 'alice', 'alice-secret', false, 'ok'],
  'sasl-ssl-scram-sha-512': ['SASL_SSL', 'SCRAM-SHA-512', 'alice', 'alice-secret', false, 'ok'],
  'sasl-ssl-plain': ['SASL_SSL', 'PLAIN', 'admin', 'admin-secret', false, 'ok'],
  mtls: ['MTLS', null, null, null, true, 'ok'],
  'sasl-plain-wrong-password': ['SASL_PLAINTEXT', 'PLAIN', 'alice', 'wrong-secret', false, 'sasl'],
  'sasl-plain-unknown-user': ['SASL_SSL', 'PLAIN', 'mallory', 'alice-secret', false, 'sasl'],
  'sasl-scram-wrong-password': ['SASL_PLAINTEXT', 'SCRAM-SHA-256', 'alice', 'wrong-secret', false, 'sasl'],
  'sasl-scram-unknown-user': ['SASL_SSL', 'SCRAM-SHA-512', 'mallory', 'alice-secret', false, 'sasl'],
  'mtls-no-cert': ['MTLS', null, null, null, false, 'tls'],
  // OAUTHBEARER: "user" names the token
  'oauth-unsecured': ['SASL_PLAINTEXT', 'OAUTHBEARER', 'unsecured', null, false, 'ok'],
  'oauth-expired': ['SASL_PLAINTEXT', 'OAUTHBEARER', 'expired', null, false, 'sasl'],
  'oauth-jwks': ['SASL_SSL', 'OAUTHBEARER', 'SEC_JWT_GOOD', null, false, 'ok'],
  'oauth-jwks-wrong-key': ['SASL_SSL', 'OAUTHBEARER', 'SEC_JWT_OTHER_KEY', null, false, 'sasl'],
}

// An unsecured JWS (alg none, empty signature) as Kafka's unsecured login module makes them.
function unsecuredToken(claims) {
  const b64 = obj => Buffer.from(JSON.stringify(obj)).toString('base64url')
  return `${b64({ alg: 'none' })}.${b64(claims)}.`
}

function oauthBearerProvider(token) {
  const now = Math.floor(Date.now() / 1000)
  let value
  if (token === 'unsecured') value = unsecuredToken({ sub: 'alice', iat: now, exp: now + 3600 })
  else if (token === 'expired') value = unsecuredToken({ sub: 'alice', iat: now - 7200, exp: now - 3600 })
  else value = fs.readFileSync(E[token], 'utf8').trim()
  return async () => ({ value })
}

function saslOptions(mechanism, user, password) {
  if (!mechanism) return undefined
  if (mechanism === 'OAUTHBEARER') return { mechanism: 'oauthbearer', oauthBearerProvider: oauthBearerProvider(user) }
  return { mechanism: mechanism.toLowerCase(), username: user, password }
}

function client(name, [listener, mechanism, user, password, cert]) {
  const tls = listener === 'SSL' || listener === 'SASL_SSL' || listener === 'MTLS'
  let ssl = false
  if (tls) {
    // Node verifies the chain and the name (the IP SAN 127.0.0.1).
    ssl = { ca: [fs.readFileSync(E.SEC_CA)], rejectUnauthorized: true }
    if (cert) Object.assign(ssl, { cert: fs.readFileSync(E.SEC_CLIENT_CERT), key: fs.readFileSync(E.SEC_CLIENT_KEY) })
  }
  return new Kafka({
    clientId: `strom-security-${name}`,
    brokers: [E[`SEC_${listener}`]],
    ssl,
    sasl: saslOptions(mechanism, user, password),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5000,
    authenticationTimeout: 5000,
    requestTimeout: 15000,
    retry: { initialRetryTime: 100, retries: 5 },
  })
}

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms))
}

function withTimeout(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms (${what})`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

async function roundTrip(name, spec) {
  const kafka = client(name, spec)
  const topic = `sec-js-${name}-${crypto.randomBytes(4).toString('hex')}`
  const admin = kafka.admin()
  await admin.connect()
  try {
    const created = await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true })
    assert.equal(created, true, `createTopics returned ${created}`)
  } finally {
    await admin.disconnect()
  }
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  try {
    const messages = [0, 1, 2, 3, 4].map(i => ({ key: `k${i}`, value: `${name}-${i}` }))
    await producer.send({ topic, acks: -1, messages })
  } finally {
    await producer.disconnect()
  }
  const consumer = kafka.consumer({ groupId: topic, sessionTimeout: 10000, heartbeatInterval: 300, maxWaitTimeInMs: 250 })
  const got = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => { got.push(`${message.key}=${message.value}`) } })
    const deadline = Date.now() + 30000
    while (got.length < 5 && Date.now() < deadline) await sleep(100)
  } finally {
    await consumer.disconnect()
  }
  assert.deepEqual(got, [0, 1, 2, 3, 4].map(i => `k${i}=${name}-${i}`))
  return `5 records via ${spec[0]}${spec[1] ? ' ' + spec[1] : ''}, topic ${topic}, group ${topic}`
}

// The broker refuses the client: connecting (ApiVersions, then SASL) fails
// with kafkajs' SASL authentication error, or a TLS error for mtls-no-cert.
async function refused(name, spec, expect) {
  const admin = client(name, spec).admin({ retry: { retries: 1 } })
  try {
    await admin.connect()
    const topics = await admin.listTopics()
    return [false, `connected and listed ${topics.length} topics`]
  } catch (e) {
    const chain = []
    for (let c = e; c; c = c.cause || c.originalError) chain.push(`${c.name}: ${c.message}${c.code ? ` (${c.code})` : ''}`)
    const text = chain.join(' <- ')
    if (expect === 'sasl' && spec[1] === 'OAUTHBEARER') {
      // kafkajs ignores the server's answer to its token: it never sees the
      // error challenge ({"status":"invalid_token"}) and never sends the
      // %x01 that would get SASL_AUTHENTICATION_FAILED. Its next request,
      // Metadata, is answered as Kafka answers a request other than
      // SaslAuthenticate mid-exchange: an empty error response (no brokers),
      // then the connection closes.
      const want = 'KafkaJSNumberOfRetriesExceeded: No brokers in the broker pool <- KafkaJSBrokerNotFound: No brokers in the broker pool'
      return [text === want, text]
    }
    if (expect === 'sasl') {
      const mechanism = spec[1]
      // "SASL PLAIN authentication failed: ..." / "SASL SCRAM SHA256 authentication failed: ..."
      const want = 'authentication failed: ' + (mechanism === 'PLAIN' ? PLAIN_REFUSED : SCRAM_REFUSED + mechanism)
      return [chain.some(c => c.startsWith('KafkaJSSASLAuthenticationError') && c.includes(want)), text]
    }
    return [/KafkaJSConnectionError/.test(text) && !/SASL/.test(text), text]
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

async function main() {
  const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(SCENARIOS)
  let failed = 0
  for (const name of names) {
    const spec = SCENARIOS[name]
    let ok, detail
    try {
      if (spec[5] === 'ok') [ok, detail] = [true, await withTimeout(roundTrip(name, spec), 60000, name)]
      else [ok, detail] = await withTimeout(refused(name, spec, spec[5]), 30000, name)
    } catch (e) {
      ok = false
      detail = `${e.name}: ${e.message}`
      console.error(e)
    }
    console.log(`RESULT ${CLIENT} ${name} ${ok ? 'PASS' : 'FAIL'} ${String(detail).replace(/\s+/g, ' ')}`)
    if (!ok) failed++
  }
  process.exit(failed ? 1 : 0)
}

main()
