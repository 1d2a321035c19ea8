// A real headless browser for the inspector's tests: Debian's chromium
// driven by playwright-core (never a downloaded browser), with a fresh
// profile each time and nothing that phones home. Every request the page
// makes is recorded, so a test can check none leaves loopback; every console
// error and page error is recorded too.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { afterAll, beforeAll } from 'vitest'

const CHROMIUM = '/usr/bin/chromium'

export interface Session {
  readonly context: BrowserContext
  readonly page: Page
  /** Console errors and uncaught exceptions, as text. */
  readonly errors: string[]
  /** Every URL the page requested. */
  readonly requests: string[]
  close(): Promise<void>
}

/** `locale`: the browser's language (navigator.languages, Accept-Language); en-US unless given. */
export async function openBrowser(options: { locale?: string } = {}): Promise<Session> {
  const profile = mkdtempSync(join(tmpdir(), 'corral-chromium-'))
  // The fresh profile: playwright passes it as --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    viewport: { width: 1600, height: 1000 },
    locale: options.locale ?? 'en-US',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  const page = context.pages()[0] ?? (await context.newPage())
  const errors: string[] = []
  const requests: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text())
  })
  page.on('pageerror', (e) => errors.push(String(e)))
  page.on('request', (r) => requests.push(r.url()))
  return {
    context,
    page,
    errors,
    requests,
    async close() {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}

/**
 * For a test file: `prepare` (building the page), then one browser opened
 * before its tests and closed after them. The session's parts are read
 * through getters, so they can be taken apart inside the tests.
 */
export function browserForTests(prepare: () => Promise<unknown>): Omit<Session, 'close'> {
  let session: Session | undefined
  // Building the page and starting Chromium take seconds on a quiet machine
  // and over a minute with every core busy: the bound is a hang guard only.
  beforeAll(async () => {
    await prepare()
    session = await openBrowser()
  }, 300_000)
  afterAll(async () => {
    await session?.close()
  })
  const open = (): Session => {
    if (session === undefined) throw new Error('the browser opens before the tests (beforeAll)')
    return session
  }
  return {
    get context() {
      return open().context
    },
    get page() {
      return open().page
    },
    get errors() {
      return open().errors
    },
    get requests() {
      return open().requests
    },
  }
}

/** A request that stays on this machine: loopback, a file, or data the page made itself. */
export const staysLocal = (url: string) =>
  /^(file|data|blob):/.test(url) || /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\//.test(url)
