// Types for @nudge/sdk. The same API is `window.nudge` in the script-tag build.

/** Where a shopper stands in the buying journey, per category and overall. */
export type Stage = 'awareness' | 'consideration' | 'decision' | 'purchase' | 'loyalty';

/** Any JSON value: what properties, traits and options may hold. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json | undefined };

/** A product as the Segment e-commerce spec v2 describes it. */
export interface Product {
  product_id?: string;
  sku?: string;
  category?: string;
  name?: string;
  brand?: string;
  variant?: string;
  price?: number;
  quantity?: number;
  coupon?: string;
  position?: number;
  url?: string;
  image_url?: string;
  [key: string]: Json | undefined;
}

/** Event properties: the Segment e-commerce fields Nudge reads, plus any others. */
export interface EcommerceProperties extends Product {
  products?: Product[];
  order_id?: string;
  checkout_id?: string;
  cart_id?: string;
  revenue?: number;
  total?: number;
  value?: number;
  shipping?: number;
  tax?: number;
  discount?: number;
  currency?: string;
  query?: string;
  list_id?: string;
}

/** Consent per purpose. */
export interface ConsentChoices {
  analytics?: boolean;
  personalization?: boolean;
  marketing?: boolean;
}

/** Options for `init`. */
export interface NudgeOptions {
  /** The site's public write key. */
  writeKey: string;
  /** Base URL of the Nudge server (batches go to `{endpoint}/v1/batch`). */
  endpoint?: string;
  /** Log what the SDK does to the console. */
  debug?: boolean;
  /** Track a page view on load and on single-page-app navigation (default true). */
  trackPages?: boolean;
  /**
   * Campaign popups (default true): watch for leaving signals and show the popup the core
   * picks from the site's campaigns. `false` leaves the page alone.
   */
  popups?: boolean;
  /** Campaigns defined in the page, added to the site config's (see the README). */
  campaigns?: object[];
  /**
   * The site's consent default. 'opt-in': nothing is stored or sent before consent;
   * 'opt-out' (default): allowed until refused. A mode that cannot be read means opt-in.
   * The shopper's own choices go to `consent(choices)`.
   */
  consent?: { mode?: 'opt-in' | 'opt-out' };
  /** Journey thresholds (site config); defaults are sensible. */
  thresholds?: { [key: string]: number };
  /** Where nudge.wasm is served; default: beside the SDK's own file. */
  wasmUrl?: string | URL;
}

/** Per-call options (Segment style), e.g. `{ timestamp, context }`. */
export type CallOptions = { [key: string]: Json | undefined };

/** A line of the cart. */
export interface CartItem {
  product_id: string;
  name?: string;
  category?: string;
  brand?: string;
  price: number;
  quantity: number;
}

/** What `recommend()` asks for. */
export interface RecommendOptions {
  /** How to rank (default 'for-you'). `similar` needs `productId`. */
  strategy?: 'for-you' | 'similar' | 'complete-the-cart' | 'popular';
  /** How many products, 1 to 50 (default 4). */
  count?: number;
  /** The product `similar` compares with. */
  productId?: string;
  /** Only products of this category. */
  category?: string;
}

/** One product `recommend()` returns: the catalogue feed's fields and why it was picked. */
export interface Recommendation {
  id: string;
  name: string;
  category: string;
  brand: string | null;
  price: number;
  currency: string | null;
  image: string | null;
  url: string | null;
  inStock: 0 | 1;
  /** The server's weighted event count over the last 30 days. */
  popularity: number;
  /** Why it was picked, for the shopper: "because you viewed TVs", "similar to Big TV". */
  reason: string;
}

/** What `profile()` returns. */
export interface Profile {
  anonymousId: string;
  userId: string | null;
  traits: { [key: string]: Json };
  sessionId: number;
  /** Overall: the stage of the strongest category. */
  stage: Stage | null;
  stages: { [category: string]: Stage };
  affinities: {
    categories: { [category: string]: number };
    brands: { [brand: string]: number };
    priceBands: { [band: string]: number };
  };
  cart: {
    items: CartItem[];
    value: number;
    currency: string | null;
    updatedAt: string | null;
    checkoutStarted: boolean;
  };
  consent: { analytics: boolean; personalization: boolean; marketing: boolean };
}

/** Payload of the 'stage' event. */
export interface StageChange {
  category: string;
  from: Stage | null;
  to: Stage;
}

/** Payload of the 'error' event: a call the SDK rejected, and why. */
export interface NudgeError {
  method: string;
  message: string;
}

/** What `debug()` returns. */
export interface DebugInfo {
  /** Messages waiting to be sent (only the tab that owns the profile keeps them). */
  outbox: Array<{ [key: string]: Json }>;
  /** This tab owns the profile (stores it and, later, sends). */
  leader: boolean;
  /** 'solo' (no other tab can be reached), 'leader' or 'follower'. */
  role: 'solo' | 'leader' | 'follower';
  /** The election among the site's tabs has not settled yet for this tab. */
  electing: boolean;
  storage: 'localStorage' | 'cookie' | 'memory';
  /** Messages dropped to keep the outbox bounded. */
  dropped: number;
  /** Calls made in this tab that the owning tab has not yet applied. */
  pending: number;
  /** Batches sent to the server and not answered yet. */
  inFlight: number;
  /** Failed sends in a row (the backoff grows with them); 0 after a delivered batch. */
  failures: number;
  [key: string]: Json;
}

/** Callbacks by event name. */
export interface NudgeEvents {
  /** The SDK loaded and replayed the calls made before (called at once if already so). */
  ready: () => void;
  stage: (change: StageChange) => void;
  change: (profile: Profile) => void;
  error: (error: NudgeError) => void;
}

/**
 * The SDK. No method throws: calls return false when rejected (the reason goes to the
 * 'error' listeners and, in debug mode, the console). Calls made before the SDK is ready
 * are queued: they return true from the npm build, and null from the script-tag
 * snippet's stub (which knows nothing yet).
 */
export interface Nudge {
  /** Starts the SDK. A second call is ignored. */
  init(options: NudgeOptions): void;
  page(name?: string, properties?: EcommerceProperties, options?: CallOptions): boolean;
  page(properties: EcommerceProperties, options?: CallOptions): boolean;
  track(event: string, properties?: EcommerceProperties, options?: CallOptions): boolean;
  identify(userId: string, traits?: { [key: string]: Json | undefined }, options?: CallOptions): boolean;
  consent(choices: ConsentChoices): boolean;
  /** The current profile, or null before the SDK is ready. */
  profile(): Profile | null;
  /**
   * The site's catalogue ranked for this shopper, from the profile in the page (the
   * catalogue is fetched once per page and revalidated by ETag). Resolves to [] when the
   * SDK is off, the site has no catalogue, or the options are refused (an 'error' says why).
   */
  recommend(options?: RecommendOptions): Promise<Recommendation[]>;
  on<K extends keyof NudgeEvents>(name: K, callback: NudgeEvents[K]): void;
  off<K extends keyof NudgeEvents>(name: K, callback: NudgeEvents[K]): void;
  /**
   * Stores pending changes now and sends every waiting event to the endpoint at once,
   * ignoring any retry backoff. Resolves once stored and handed to the network (delivery
   * is confirmed later; events stay in the outbox until the server has taken them).
   * Never rejects.
   */
  flush(): Promise<void>;
  /** A new anonymous shopper (for logout). */
  reset(): boolean;
  /** Wipes local data and asks the server to erase the shopper. */
  forget(): boolean;
  /** Internal state for debugging, or null before the SDK is ready. */
  debug(): DebugInfo | null;
  /** Resolves true once the SDK runs, false if it was disabled (CSP, no WebAssembly). */
  readonly ready: Promise<boolean>;
}

/** Makes an SDK instance; with options it also calls `init(options)`. */
export function createNudge(options?: NudgeOptions): Nudge;

/** The SDK version. */
export const VERSION: string;
