// opsloop sandbox page: renders the Slack emulator's state and drives it as one of its users.
//
// Plain ES2020, no build step and no network beyond this origin. Every string from the state is
// put on the page with textContent / text nodes (never innerHTML), so Slack text cannot inject
// markup. The command input is static HTML and is never re-rendered, so live updates do not
// disturb what the person is typing.
"use strict";

(() => {
  // ---------------------------------------------------------------- small helpers

  const $ = (id) => document.getElementById(id);

  /** Build an element. attrs: class, testid, dataset, on<event>, booleans, other attributes. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "testid") el.dataset.testid = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (value === true) el.setAttribute(key, "");
      else el.setAttribute(key, String(value));
    }
    append(el, children);
    return el;
  }

  function append(parent, children) {
    for (const child of [children].flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      parent.append(child instanceof Node ? child : String(child));
    }
    return parent;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function store(key, value) {
    try {
      if (value === null) localStorage.removeItem(key);
      else localStorage.setItem(key, value);
    } catch (_) {
      // Storage can be unavailable (private windows); remembering the choice is only a nicety.
    }
  }

  function recall(key) {
    try {
      return localStorage.getItem(key);
    } catch (_) {
      return null;
    }
  }

  /** Compare Slack timestamps ("1700000000.000100") exactly; floats lose the last digits. */
  function tsCompare(a, b) {
    const [ai, af = ""] = String(a).split(".");
    const [bi, bf = ""] = String(b).split(".");
    if (ai.length !== bi.length) return ai.length - bi.length;
    if (ai !== bi) return ai < bi ? -1 : 1;
    const fa = af.padEnd(6, "0");
    const fb = bf.padEnd(6, "0");
    return fa === fb ? 0 : fa < fb ? -1 : 1;
  }

  function tsDate(ts) {
    const seconds = Number.parseFloat(ts);
    return Number.isFinite(seconds) ? new Date(seconds * 1000) : null;
  }

  function shortTime(ts) {
    const d = tsDate(ts);
    return d ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
  }

  function longTime(ts) {
    const d = tsDate(ts);
    return d ? d.toLocaleString() : "";
  }

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many}`;
  }

  // ---------------------------------------------------------------- UI state

  const SLACKBOT = "USLACKBOT";

  const ui = {
    state: null,
    version: -1,
    channel: recall("opsloop.sandbox.channel"),
    user: recall("opsloop.sandbox.user"),
    thread: null, // ts of the open thread's parent, in the current channel
    seen: {}, // channel id -> latest ts the person has had on screen
    pending: new Map(), // action key -> "sending" | "sent" | "failed"
    drafts: {}, // view id -> block_id -> action_id -> value in view_submission form
    localErrors: {}, // view id -> errors from the last view_submission answer
    closedViews: new Set(), // closed here; hidden before the emulator confirms
    dismissed: new Set(), // ephemerals dismissed here
    shortcuts: [], // message shortcuts of the app: [{name, callback_id}], from /_sandbox/info
    modalKey: null,
    highlight: null, // ts of the message a permalink opened
    permalink: null, // {channel, ts, thread} a permalink asked for, until it is shown
    usersKey: null,
    history: [],
    historyPos: 0,
  };

  function normalize(raw) {
    const st = raw && typeof raw === "object" ? raw : {};
    const channels = Array.isArray(st.channels) ? st.channels.filter((c) => c && c.id) : [];
    const messages = st.messages && typeof st.messages === "object" ? st.messages : {};
    // Messages can land where the channel list does not reach (a direct message, say).
    for (const id of Object.keys(messages)) {
      if (!channels.some((c) => c.id === id)) channels.push({ id, name: id });
    }
    return {
      version: typeof st.version === "number" ? st.version : 0,
      team: st.team || {},
      bot_user_id: st.bot_user_id || "",
      bot_name: typeof st.bot_name === "string" ? st.bot_name : "",
      users: Array.isArray(st.users) ? st.users : [],
      usergroups: Array.isArray(st.usergroups) ? st.usergroups.filter((g) => g && g.id) : [],
      channels,
      messages,
      ephemerals: Array.isArray(st.ephemerals) ? st.ephemerals : [],
      views: Array.isArray(st.views) ? st.views : [],
    };
  }

  const people = () => ui.state.users.filter((u) => u.id !== ui.state.bot_user_id);
  const findUser = (id) => ui.state.users.find((u) => u.id === id);
  const findChannel = (id) => ui.state.channels.find((c) => c.id === id);
  const channelLabel = (ch) =>
    ch.is_im ? `@${ch.name} (direct messages with ${botName()})` : `#${ch.name}`;
  const channelMessages = (id) => {
    const list = ui.state.messages[id];
    return Array.isArray(list) ? list : [];
  };

  function botName() {
    if (ui.state.bot_name) return ui.state.bot_name;
    const bot = findUser(ui.state.bot_user_id);
    if (bot) return bot.real_name || bot.name;
    for (const list of Object.values(ui.state.messages)) {
      const msg = (list || []).find((m) => m.user === ui.state.bot_user_id && m.user_name);
      if (msg) return msg.user_name;
    }
    return "opsloop";
  }

  function userLabel(id) {
    if (id && id === ui.state.bot_user_id) return botName();
    const u = findUser(id);
    return u ? u.name || u.real_name || id : id || "unknown";
  }

  function authorName(msg) {
    if (msg.user === ui.state.bot_user_id) return botName();
    const u = findUser(msg.user);
    return (u && (u.real_name || u.name)) || msg.user_name || msg.user || "unknown";
  }

  function myEphemerals(channel) {
    return ui.state.ephemerals.filter(
      (e) => e.user === ui.user && e.channel === channel && !ui.dismissed.has(e.ts),
    );
  }

  /** Ephemerals for the channel view: a thread's own show there while that thread is open. */
  const channelEphemerals = (channel) =>
    myEphemerals(channel).filter((e) => !e.thread_ts || e.thread_ts !== ui.thread);
  const threadEphemerals = (channel, ts) => myEphemerals(channel).filter((e) => e.thread_ts === ts);

  function latestTs(channel) {
    let latest = "0";
    const bump = (ts) => {
      if (ts && tsCompare(ts, latest) > 0) latest = ts;
    };
    for (const msg of channelMessages(channel)) {
      bump(msg.ts);
      for (const reply of msg.replies || []) bump(reply.ts);
    }
    for (const e of myEphemerals(channel)) bump(e.ts);
    return latest;
  }

  function unreadCount(channel) {
    const seen = ui.seen[channel] || "0";
    let n = 0;
    for (const msg of channelMessages(channel)) {
      if (tsCompare(msg.ts, seen) > 0) n += 1;
      for (const reply of msg.replies || []) if (tsCompare(reply.ts, seen) > 0) n += 1;
    }
    for (const e of myEphemerals(channel)) if (tsCompare(e.ts, seen) > 0) n += 1;
    return n;
  }

  // ---------------------------------------------------------------- mrkdwn

  const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'" };
  const decode = (s) => s.replace(/&(?:amp|lt|gt|quot|#39);/g, (m) => ENTITIES[m]);

  // The emoji the bot is likely to use; others stay as :name: like Slack shows unknown ones.
  // prettier-ignore
  const EMOJI = {
    white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", warning: "⚠️", rocket: "🚀",
    fire: "🔥", rotating_light: "🚨", red_circle: "🔴", large_green_circle: "🟢",
    large_yellow_circle: "🟡", large_blue_circle: "🔵", white_circle: "⚪", black_circle: "⚫",
    hourglass: "⌛", hourglass_flowing_sand: "⏳", stopwatch: "⏱️", bell: "🔔", eyes: "👀",
    tada: "🎉", construction: "🚧", no_entry: "⛔", no_entry_sign: "🚫", memo: "📝",
    arrows_counterclockwise: "🔄", repeat: "🔁", package: "📦", wrench: "🔧", gear: "⚙️",
    bug: "🐛", octagonal_sign: "🛑", information_source: "ℹ️", mag: "🔍", lock: "🔒",
    thumbsup: "👍", "+1": "👍", thumbsdown: "👎", "-1": "👎", ok: "🆗", sos: "🆘",
    arrow_right: "➡️", arrow_up: "⬆️", arrow_down: "⬇️", leftwards_arrow_with_hook: "↩️",
    clipboard: "📋", calendar: "📅", bust_in_silhouette: "👤", robot_face: "🤖",
    small_red_triangle: "🔺", small_red_triangle_down: "🔻", checkered_flag: "🏁",
    pause_button: "⏸️", arrow_forward: "▶️", stop_button: "⏹️", link: "🔗", zap: "⚡",
    chart_with_upwards_trend: "📈", chart_with_downwards_trend: "📉", shield: "🛡️",
    raised_hand: "✋", ballot_box_with_check: "☑️", rewind: "⏪", fast_forward: "⏩",
    large_orange_circle: "🟠", mute: "🔇",
  };
  const emojify = (s) => s.replace(/:([a-z0-9_+-]+):/g, (m, name) => EMOJI[name] || m);

  const SAFE_URL = /^(?:https?:|mailto:)/i;

  function link(url, label) {
    if (!SAFE_URL.test(url)) return document.createTextNode(label);
    return h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, label);
  }

  function mention(text, kind) {
    return h("span", { class: `mention mention-${kind}` }, text);
  }

  /** A <...> sequence of Slack's mrkdwn: links, user/channel/group mentions, specials. */
  function controlSequence(inner) {
    const bar = inner.indexOf("|");
    const target = bar < 0 ? inner : inner.slice(0, bar);
    const label = bar < 0 ? "" : decode(inner.slice(bar + 1));
    if (target.startsWith("@")) return mention(`@${label || userLabel(target.slice(1))}`, "user");
    if (target.startsWith("#")) {
      const id = target.slice(1);
      const ch = findChannel(id);
      const el = mention(`#${label || (ch ? ch.name : id)}`, "channel");
      if (ch) {
        el.classList.add("clickable");
        el.addEventListener("click", () => selectChannel(ch.id));
      }
      return el;
    }
    if (target.startsWith("!subteam^")) {
      // Slack shows the group's handle (@sre), whatever label the text carries.
      const text = groupHandle(target.slice("!subteam^".length)) || label;
      return mention(text.startsWith("@") ? text : `@${text}`, "group");
    }
    if (target.startsWith("!date^")) return dateToken(target, label);
    if (target.startsWith("!")) {
      const word = target.slice(1);
      if (["here", "channel", "everyone"].includes(word)) return mention(`@${word}`, "special");
      return document.createTextNode(label || word);
    }
    const url = decode(target);
    return link(url, label || url);
  }

  /** A user group's handle ("sre" for S0SRE) from the emulator's usergroups, or "". */
  function groupHandle(id) {
    const group = ui.state && ui.state.usergroups.find((g) => g.id === id);
    return group && typeof group.handle === "string" ? group.handle : "";
  }

  // ---------------------------------------------------------------- <!date^...> tokens

  const DAY_MS = 24 * 60 * 60 * 1000;
  const capitalized = (s) => s.charAt(0).toUpperCase() + s.slice(1);

  function ordinal(n) {
    const tail = n % 100 >= 11 && n % 100 <= 13 ? 0 : n % 10;
    return `${n}${{ 1: "st", 2: "nd", 3: "rd" }[tail] || "th"}`;
  }

  /** "today", "yesterday" or "tomorrow" for a date near now, else null. */
  function prettyDay(d) {
    const midnight = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
    const days = Math.round((midnight(d) - midnight(new Date())) / DAY_MS);
    return { 0: "today", "-1": "yesterday", 1: "tomorrow" }[days] || null;
  }

  function agoText(d) {
    const seconds = Math.round((Date.now() - d.getTime()) / 1000);
    const s = Math.abs(seconds);
    let amount;
    if (s < 60) amount = plural(s, "second", "seconds");
    else if (s < 3600) amount = plural(Math.floor(s / 60), "minute", "minutes");
    else if (s < 86400) amount = plural(Math.floor(s / 3600), "hour", "hours");
    else amount = plural(Math.floor(s / 86400), "day", "days");
    return seconds < 0 ? `in ${amount}` : `${amount} ago`;
  }

  /** What Slack puts for each {token} of a date format, in the viewer's locale and zone. */
  function dateTokenText(token, d) {
    const month = d.toLocaleDateString([], { month: "long" });
    const shortMonth = d.toLocaleDateString([], { month: "short" });
    const weekday = d.toLocaleDateString([], { weekday: "long" });
    const date = `${month} ${ordinal(d.getDate())}, ${d.getFullYear()}`;
    const short = `${shortMonth} ${d.getDate()}, ${d.getFullYear()}`;
    const long = `${weekday}, ${date}`;
    const pretty = prettyDay(d);
    const pad = (n) => String(n).padStart(2, "0");
    const texts = {
      date_num: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
      date,
      date_short: short,
      date_long: long,
      date_pretty: pretty ? capitalized(pretty) : date,
      date_short_pretty: pretty ? capitalized(pretty) : short,
      date_long_pretty: pretty ? capitalized(pretty) : long,
      // The clock of the message times (shortTime), so the page shows one form of time.
      time: d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
      time_secs: d.toLocaleTimeString([], {
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
      }),
      ago: agoText(d),
    };
    return texts[token];
  }

  /** <!date^<unix>^<format>[^<link>]|<fallback>>: the format's {tokens} filled in, as Slack
   * does for the viewer; an unknown token shows the fallback text, as in Slack. */
  function dateToken(target, fallback) {
    const [, unix = "", format = "", url = ""] = target.split("^");
    if (!/^-?\d+$/.test(unix)) return document.createTextNode(fallback || target);
    const d = new Date(Number(unix) * 1000);
    let unknown = false;
    const text = decode(format).replace(/\{([a-z_]+)\}/g, (m, token) => {
      const out = dateTokenText(token, d);
      if (out === undefined) unknown = true;
      return out === undefined ? m : out;
    });
    if (unknown && fallback) return document.createTextNode(fallback);
    if (url && SAFE_URL.test(decode(url))) return link(decode(url), text);
    return h(
      "time",
      { class: "date-token", datetime: d.toISOString(), title: d.toLocaleString() },
      text,
    );
  }

  // *bold*, _italic_ and ~strike~ only count at word edges, as in Slack: snake_case stays.
  const INLINE = new RegExp(
    [
      "<([^<>\\n]+)>",
      "(?<![\\w*])\\*(?=\\S)([^*\\n]+?)(?<=\\S)\\*(?![\\w*])",
      "(?<![\\w_])_(?=\\S)([^_\\n]+?)(?<=\\S)_(?![\\w_])",
      "(?<![\\w~])~(?=\\S)([^~\\n]+?)(?<=\\S)~(?![\\w~])",
    ].join("|"),
    "g",
  );

  function formatted(text, parent) {
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      if (m.index > last) parent.append(emojify(decode(text.slice(last, m.index))));
      if (m[1] !== undefined) parent.append(controlSequence(m[1]));
      else if (m[2] !== undefined) parent.append(formatted(m[2], h("strong")));
      else if (m[3] !== undefined) parent.append(formatted(m[3], h("em")));
      else parent.append(formatted(m[4], h("s")));
      last = m.index + m[0].length;
    }
    if (last < text.length) parent.append(emojify(decode(text.slice(last))));
    return parent;
  }

  /** Text of code spans and blocks: no formatting, but links and mentions show their label. */
  function codeText(text) {
    let out = "";
    let last = 0;
    for (const m of text.matchAll(/<([^<>\n]+)>/g)) {
      out += decode(text.slice(last, m.index)) + controlSequence(m[1]).textContent;
      last = m.index + m[0].length;
    }
    return out + decode(text.slice(last));
  }

  function inlineCode(text, parent) {
    text.split(/`([^`\n]+)`/).forEach((part, i) => {
      if (i % 2 === 1) parent.append(h("code", null, codeText(part)));
      else if (part) formatted(part, parent);
    });
  }

  /** Slack mrkdwn -> DOM nodes. */
  function mrkdwn(text) {
    const frag = document.createDocumentFragment();
    if (text === undefined || text === null) return frag;
    String(text)
      .split(/```([\s\S]*?)```/)
      .forEach((part, i) => {
        if (i % 2 === 1)
          frag.append(
            h("pre", { class: "md-pre" }, codeText(part.replace(/^\n/, "").replace(/\n$/, ""))),
          );
        else if (part) inlineCode(part, frag);
      });
    return frag;
  }

  /** A Block Kit text object (plain_text or mrkdwn). */
  function textObject(obj) {
    if (!obj) return null;
    if (typeof obj === "string") return document.createTextNode(obj);
    if (obj.type === "mrkdwn") return h("span", { class: "mrkdwn" }, mrkdwn(obj.text || ""));
    return h(
      "span",
      { class: "plain" },
      obj.emoji === false ? obj.text || "" : emojify(obj.text || ""),
    );
  }

  const plainText = (obj) => (obj && typeof obj === "object" ? obj.text || "" : obj || "");

  // ---------------------------------------------------------------- rich_text

  function richInline(el) {
    switch (el.type) {
      case "text": {
        let node = document.createTextNode(el.text || "");
        const style = el.style || {};
        if (style.code) node = h("code", null, node);
        if (style.bold) node = h("strong", null, node);
        if (style.italic) node = h("em", null, node);
        if (style.strike) node = h("s", null, node);
        return node;
      }
      case "link":
        return link(el.url || "", el.text || el.url || "");
      case "user":
        return mention(`@${userLabel(el.user_id)}`, "user");
      case "channel": {
        const ch = findChannel(el.channel_id);
        return mention(`#${ch ? ch.name : el.channel_id}`, "channel");
      }
      case "usergroup":
        return mention(`@${el.usergroup_id}`, "group");
      case "broadcast":
        return mention(`@${el.range}`, "special");
      case "emoji":
        return document.createTextNode(
          el.unicode
            ? String.fromCodePoint(...el.unicode.split("-").map((c) => Number.parseInt(c, 16)))
            : EMOJI[el.name] || `:${el.name}:`,
        );
      case "date":
        return document.createTextNode(el.fallback || String(el.timestamp || ""));
      default:
        return document.createTextNode(el.text || "");
    }
  }

  function richElement(el) {
    const inline = (el.elements || []).map(richInline);
    switch (el.type) {
      case "rich_text_list": {
        const tag = el.style === "ordered" ? "ol" : "ul";
        return h(
          tag,
          { class: "rich-list" },
          (el.elements || []).map((item) => h("li", null, richElement(item))),
        );
      }
      case "rich_text_preformatted":
        return h("pre", { class: "md-pre" }, inline);
      case "rich_text_quote":
        return h("blockquote", { class: "rich-quote" }, inline);
      default:
        return h("span", null, inline);
    }
  }

  // ---------------------------------------------------------------- Block Kit

  /** Where an interactive element lives: a message, an ephemeral, or a modal (inert). */
  function actionKey(ctx, block, el) {
    const where = ctx.message_ts || ctx.ephemeral_ts || "";
    return [ctx.channel, where, block.block_id || "", el.action_id || ""].join("|");
  }

  function renderBlocks(blocks, ctx) {
    return h(
      "div",
      { class: "blocks" },
      blocks.map((b) => renderBlock(b || {}, ctx)),
    );
  }

  function renderBlock(block, ctx) {
    switch (block.type) {
      case "section":
        return renderSection(block, ctx);
      case "header":
        return h("div", { class: "b-header" }, emojify(plainText(block.text)));
      case "context":
        return h(
          "div",
          { class: "b-context" },
          (block.elements || []).map((el) =>
            el.type === "image"
              ? h(
                  "span",
                  { class: "b-image-alt", title: el.alt_text || "" },
                  `[${el.alt_text || "image"}]`,
                )
              : h("span", { class: "b-context-item" }, textObject(el)),
          ),
        );
      case "divider":
        return h("hr", { class: "b-divider" });
      case "actions":
        return h(
          "div",
          { class: "b-actions" },
          (block.elements || []).map((el) => renderElement(el, block, ctx)),
        );
      case "image":
        return h(
          "figure",
          { class: "b-image" },
          block.title && h("figcaption", null, plainText(block.title)),
          h(
            "div",
            { class: "b-image-box", title: block.image_url || "" },
            `🖼 ${block.alt_text || "image"}`,
          ),
        );
      case "rich_text":
        return h("div", { class: "b-rich" }, (block.elements || []).map(richElement));
      default:
        return renderUnknown(block);
    }
  }

  function renderUnknown(block) {
    let json = JSON.stringify(block, null, 2) || "";
    if (json.length > 800) json = `${json.slice(0, 800)}\n…`;
    return h(
      "details",
      { class: "b-unknown" },
      h("summary", null, `Block “${block.type || "?"}” is not shown in the sandbox`),
      h("pre", null, json),
    );
  }

  function renderSection(block, ctx) {
    const main = h(
      "div",
      { class: "b-section-main" },
      block.text && h("div", { class: "b-section-text" }, textObject(block.text)),
      Array.isArray(block.fields) &&
        block.fields.length > 0 &&
        h(
          "div",
          { class: "b-fields" },
          block.fields.map((f) => h("div", { class: "b-field" }, textObject(f))),
        ),
    );
    return h(
      "div",
      { class: "b-section" },
      main,
      block.accessory &&
        h("div", { class: "b-accessory" }, renderElement(block.accessory, block, ctx)),
    );
  }

  function renderElement(el, block, ctx) {
    switch (el.type) {
      case "button":
        return renderButton(el, block, ctx);
      case "static_select":
      case "external_select":
        return renderSelect(
          el,
          block,
          ctx,
          selectOptions(el),
          plainText(el.placeholder) || "Select…",
        );
      case "overflow":
        return renderSelect(el, block, ctx, selectOptions(el), "⋯", "b-overflow");
      case "users_select":
        return renderSelect(
          el,
          block,
          ctx,
          userOptions(),
          plainText(el.placeholder) || "Select a person",
        );
      case "conversations_select":
      case "channels_select":
        return renderSelect(
          el,
          block,
          ctx,
          channelOptions(),
          plainText(el.placeholder) || "Select a channel",
        );
      case "image":
        return h("span", { class: "b-image-alt" }, `[${el.alt_text || "image"}]`);
      default:
        return h(
          "span",
          { class: "b-unknown-el", title: JSON.stringify(el) },
          `[${el.type || "element"}]`,
        );
    }
  }

  function renderButton(el, block, ctx) {
    const key = actionKey(ctx, block, el);
    const state = ui.pending.get(key);
    const style = el.style === "primary" || el.style === "danger" ? el.style : "default";
    return h(
      "button",
      {
        type: "button",
        class: `btn btn-${style}${state ? ` is-${state}` : ""}`,
        testid: "button",
        disabled: ctx.inert,
        title: ctx.inert ? "Buttons inside modals are not wired in the sandbox" : null,
        dataset: { actionKey: key, actionId: el.action_id || "", blockId: block.block_id || "" },
        onclick: () => clickButton(el, block, ctx, key),
      },
      emojify(plainText(el.text)),
    );
  }

  /** Flattened options (with their optgroup label) of a select or overflow element. */
  function selectOptions(el) {
    if (Array.isArray(el.option_groups)) {
      return el.option_groups.flatMap((g) =>
        (g.options || []).map((o) => ({ option: o, group: plainText(g.label) })),
      );
    }
    return (el.options || []).map((o) => ({ option: o, group: null }));
  }

  function userOptions() {
    return people().map((u) => ({
      option: { text: { type: "plain_text", text: u.real_name || u.name }, value: u.id },
      group: null,
    }));
  }

  function channelOptions() {
    return ui.state.channels.map((c) => ({
      option: { text: { type: "plain_text", text: `#${c.name}` }, value: c.id },
      group: null,
    }));
  }

  function optionNodes(options, isSelected) {
    const nodes = [];
    let group = null;
    options.forEach(({ option, group: label }, i) => {
      // The value is Slack's (handy for tests); the index finds the option even if values repeat.
      const node = h(
        "option",
        {
          value: String(option.value ?? ""),
          selected: isSelected(option),
          dataset: { index: String(i) },
        },
        plainText(option.text),
      );
      if (label) {
        if (!group || group.label !== label) {
          group = h("optgroup", { label });
          nodes.push(group);
        }
        group.append(node);
      } else {
        group = null;
        nodes.push(node);
      }
    });
    return nodes;
  }

  /** The options (of `options`) a <select> built by optionNodes has selected. */
  function pickedOptions(select, options) {
    return [...select.selectedOptions]
      .filter((node) => node.dataset.index !== undefined)
      .map((node) => options[Number(node.dataset.index)])
      .filter(Boolean);
  }

  function renderSelect(el, block, ctx, options, placeholder, extraClass) {
    const key = actionKey(ctx, block, el);
    const state = ui.pending.get(key);
    const initial = el.initial_option
      ? el.initial_option.value
      : el.initial_user || el.initial_conversation || el.initial_channel;
    const select = h(
      "select",
      {
        class: `b-select ${extraClass || ""}${state ? ` is-${state}` : ""}`,
        disabled: ctx.inert,
        "aria-label": placeholder,
        dataset: { actionKey: key, actionId: el.action_id || "", blockId: block.block_id || "" },
      },
      h("option", { value: "", disabled: true, selected: initial === undefined }, placeholder),
      optionNodes(options, (o) => initial !== undefined && o.value === initial),
    );
    select.addEventListener("change", () => {
      const [picked] = pickedOptions(select, options);
      if (!picked) return;
      const extra = {};
      if (el.type === "users_select") extra.selected_user = picked.option.value;
      else if (el.type === "conversations_select")
        extra.selected_conversation = picked.option.value;
      else if (el.type === "channels_select") extra.selected_channel = picked.option.value;
      else extra.selected_option = { text: picked.option.text, value: picked.option.value };
      if (el.type === "overflow") select.value = ""; // an overflow menu has no lasting selection
      sendAction(el, block, ctx, key, extra);
    });
    return select;
  }

  async function clickButton(el, block, ctx, key) {
    if (ctx.inert) return;
    if (el.confirm && !(await confirmDialog(el.confirm))) return;
    if (el.url && SAFE_URL.test(el.url)) window.open(el.url, "_blank", "noopener");
    const extra = {};
    if (el.value !== undefined) extra.value = el.value;
    await sendAction(el, block, ctx, key, extra);
  }

  function setPending(key, state) {
    if (state) ui.pending.set(key, state);
    else ui.pending.delete(key);
    for (const node of document.querySelectorAll("[data-action-key]")) {
      if (node.dataset.actionKey !== key) continue;
      node.classList.remove("is-sending", "is-sent", "is-failed");
      if (state) node.classList.add(`is-${state}`);
    }
  }

  /** Why an answer of the bot is not a success, in a line the person can act on. */
  function answerProblem(what, status, data) {
    if (!status) return `${what}: ${data.note || "the bot did not answer"}`;
    const answer = data.answer ? `: ${String(data.answer).slice(0, 200)}` : "";
    return `${what} answered HTTP ${status}${answer}`;
  }

  async function sendAction(el, block, ctx, key, extra) {
    const body = {
      user: ui.user,
      channel: ctx.channel,
      block_id: block.block_id || "",
      action_id: el.action_id || "",
      ...extra,
    };
    if (ctx.ephemeral_ts) body.ephemeral_ts = ctx.ephemeral_ts;
    else body.message_ts = ctx.message_ts;
    setPending(key, "sending");
    const res = await post("/_emulator/action", body);
    const data = res.data || {};
    const status = typeof data.status === "number" ? data.status : res.httpStatus;
    const ok = res.ok && status >= 200 && status < 300;
    if (!ok)
      toast(
        res.ok
          ? answerProblem(`“${plainText(el.text) || el.action_id}”`, status, data)
          : errorText(res),
        "error",
      );
    setPending(key, ok ? "sent" : "failed");
    setTimeout(
      () => {
        if (ui.pending.get(key) === (ok ? "sent" : "failed")) setPending(key, null);
      },
      ok ? 1500 : 4000,
    );
  }

  // ---------------------------------------------------------------- HTTP

  async function post(path, body) {
    try {
      const res = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      let data = null;
      try {
        data = await res.json();
      } catch (_) {
        data = null;
      }
      const error = res.ok ? null : `The sandbox answered HTTP ${res.status} on ${path}.`;
      return { ok: res.ok, httpStatus: res.status, data, error };
    } catch (_) {
      return {
        ok: false,
        httpStatus: 0,
        data: null,
        error: "Could not reach the sandbox. Is it still running?",
      };
    }
  }

  /** The emulator explains a refused control request in {"error": "..."}. */
  function errorText(res) {
    return res.data && typeof res.data.error === "string"
      ? `${res.error} ${res.data.error}`
      : res.error;
  }

  async function pollLoop() {
    let delay = 500;
    for (;;) {
      const started = Date.now();
      try {
        const url = ui.version < 0 ? "/_emulator/state" : `/_emulator/wait?since=${ui.version}`;
        const res = await fetch(url, { cache: "no-store" });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const st = await res.json();
        setConnection("live");
        delay = 500;
        if (st.version !== ui.version) applyState(st);
        else if (Date.now() - started < 1000) await sleep(1000); // a wait that returns at once
      } catch (_) {
        setConnection("offline");
        await sleep(delay);
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  function setConnection(state) {
    const el = $("connection");
    if (el.dataset.state === state) return;
    el.dataset.state = state;
    el.textContent = state === "live" ? "live" : "reconnecting…";
    el.title =
      state === "live" ? "Updates arrive as they happen" : "The sandbox is not answering; retrying";
  }

  // ---------------------------------------------------------------- rendering

  function applyState(raw) {
    const first = ui.state === null;
    ui.state = normalize(raw);
    ui.version = ui.state.version;
    const users = people();
    if (!users.some((u) => u.id === ui.user)) ui.user = users.length ? users[0].id : null;
    if (!findChannel(ui.channel))
      ui.channel = ui.state.channels.length ? ui.state.channels[0].id : null;
    if (first) for (const c of ui.state.channels) ui.seen[c.id] = latestTs(c.id);
    // Forget what belonged to views that are gone, in case a view id is ever reused.
    const live = new Set(ui.state.views.map((v) => v && v.id));
    for (const id of Object.keys(ui.drafts)) if (!live.has(id)) delete ui.drafts[id];
    for (const id of Object.keys(ui.localErrors)) if (!live.has(id)) delete ui.localErrors[id];
    for (const id of [...ui.closedViews]) if (!live.has(id)) ui.closedViews.delete(id);
    render();
  }

  function render() {
    if (!ui.state) return;
    if (ui.channel) ui.seen[ui.channel] = latestTs(ui.channel);
    renderSampleAlert();
    renderUsers();
    renderChannels();
    renderHeader();
    renderMessages();
    renderThread();
    renderModal();
    if (ui.permalink) showPermalink();
  }

  function renderUsers() {
    const picker = $("user-picker");
    const users = people();
    const key = JSON.stringify(users.map((u) => [u.id, u.real_name, u.name, u.approver]));
    if (key !== ui.usersKey) {
      ui.usersKey = key;
      picker.replaceChildren(
        ...users.map((u) =>
          h(
            "option",
            { value: u.id },
            `${u.real_name || u.name}${u.approver ? "  · approver" : ""}`,
          ),
        ),
      );
    }
    if (ui.user) picker.value = ui.user;
    const me = findUser(ui.user);
    $("user-info").replaceChildren(
      ...(me
        ? [
            h("span", { class: "user-handle" }, `@${me.name || me.id}`),
            me.approver
              ? h("span", { class: "badge badge-approver", testid: "approver-badge" }, "approver")
              : null,
          ].filter(Boolean)
        : []),
    );
  }

  function renderChannels() {
    // Channels first, then direct messages (the bot's DMs with each person).
    const ordered = [
      ...ui.state.channels.filter((c) => !c.is_im),
      ...ui.state.channels.filter((c) => c.is_im),
    ];
    $("channel-list").replaceChildren(
      ...ordered.map((c) => {
        const unread = c.id === ui.channel ? 0 : unreadCount(c.id);
        return h(
          "button",
          {
            type: "button",
            class: `channel${c.id === ui.channel ? " active" : ""}${unread ? " unread" : ""}`,
            testid: `channel-${c.id}`,
            "aria-current": c.id === ui.channel ? "page" : null,
            dataset: { unread: unread ? "true" : "false" },
            onclick: () => selectChannel(c.id),
          },
          h("span", { class: "channel-hash" }, c.is_im ? "@" : "#"),
          h("span", { class: "channel-name" }, c.name),
          unread
            ? h(
                "span",
                {
                  class: "unread-count",
                  title: `${plural(unread, "new message", "new messages")}`,
                },
                String(unread),
              )
            : null,
        );
      }),
    );
  }

  function renderHeader() {
    const ch = findChannel(ui.channel);
    $("channel-title").textContent = ch ? channelLabel(ch) : "No channels";
    const me = findUser(ui.user);
    $("channel-subtitle").textContent = me
      ? `Acting as ${me.real_name || me.name}${me.approver ? " (approver)" : ""}`
      : "";
  }

  /** Re-render a scrolling box while keeping the reader's place (or following the bottom). */
  function keepScroll(box, sameContent, renderInto) {
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
    const top = box.scrollTop;
    renderInto();
    box.scrollTop = !sameContent || atBottom ? box.scrollHeight : top;
  }

  function renderMessages() {
    const box = $("messages");
    const channel = ui.channel;
    const same = box.dataset.channel === (channel || "");
    box.dataset.channel = channel || "";
    keepScroll(box, same, () => {
      if (!channel) {
        box.replaceChildren(h("div", { class: "empty" }, "The emulator has no channels."));
        return;
      }
      const items = [
        ...channelMessages(channel).map((m) => ({
          ts: m.ts,
          node: () => renderMessage(m, channel, "message"),
        })),
        ...channelEphemerals(channel).map((e) => ({
          ts: e.ts,
          node: () => renderEphemeral(e, true),
        })),
      ].sort((a, b) => tsCompare(a.ts, b.ts));
      if (!items.length) {
        const ch = findChannel(channel);
        box.replaceChildren(
          h(
            "div",
            { class: "empty" },
            h(
              "p",
              { class: "empty-title" },
              `This is the very beginning of #${ch ? ch.name : channel}.`,
            ),
            h(
              "p",
              null,
              "Type a slash command on the left, for example ",
              h("code", null, "/ops help"),
              ", and press Enter.",
            ),
          ),
        );
        return;
      }
      box.replaceChildren(...items.map((item) => item.node()));
    });
  }

  function avatar(userId, name) {
    const el = h(
      "div",
      { class: "avatar", "aria-hidden": "true" },
      (name || "?").trim().charAt(0).toUpperCase(),
    );
    let hash = 0;
    for (const ch of String(userId || name)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
    el.style.backgroundColor = `hsl(${hash % 360}, 45%, 45%)`;
    if (userId && userId === ui.state.bot_user_id) el.classList.add("avatar-bot");
    return el;
  }

  function messageContent(msg, ctx) {
    const attachments = Array.isArray(msg.attachments) ? msg.attachments.filter(Boolean) : [];
    const reactions = Array.isArray(msg.reactions) ? msg.reactions.filter((r) => r && r.count) : [];
    let main = null;
    if (Array.isArray(msg.blocks) && msg.blocks.length) main = renderBlocks(msg.blocks, ctx);
    else if (msg.text || !attachments.length)
      main = h("div", { class: "msg-text mrkdwn" }, mrkdwn(msg.text || ""));
    return [
      main,
      attachments.map((a) => renderAttachment(a, ctx)),
      reactions.length
        ? h(
            "div",
            { class: "reactions" },
            reactions.map((r) =>
              h(
                "span",
                { class: "reaction", title: (r.users || []).map(userLabel).join(", ") },
                `${emojify(`:${r.name}:`)} ${r.count}`,
              ),
            ),
          )
        : null,
    ];
  }

  /** A legacy attachment: colour bar, pretext, title, text, fields, blocks, footer. */
  function renderAttachment(a, ctx) {
    const bar = h("div", { class: "att-bar" });
    const color = { good: "#2eb67d", warning: "#ecb22e", danger: "#e01e5a" }[a.color] || a.color;
    if (typeof color === "string" && /^#?[0-9a-f]{3,8}$/i.test(color)) {
      bar.style.backgroundColor = color.startsWith("#") ? color : `#${color}`;
    }
    const title = a.title
      ? a.title_link && SAFE_URL.test(a.title_link)
        ? link(a.title_link, a.title)
        : a.title
      : null;
    const fields = Array.isArray(a.fields) ? a.fields : [];
    return h(
      "div",
      { class: "attachment-wrap" },
      a.pretext ? h("div", { class: "mrkdwn" }, mrkdwn(a.pretext)) : null,
      h(
        "div",
        { class: "attachment" },
        bar,
        h(
          "div",
          { class: "att-body" },
          a.author_name ? h("div", { class: "att-author" }, a.author_name) : null,
          title ? h("div", { class: "att-title" }, title) : null,
          a.text ? h("div", { class: "mrkdwn" }, mrkdwn(a.text)) : null,
          fields.length
            ? h(
                "div",
                { class: "b-fields" },
                fields.map((f) =>
                  h(
                    "div",
                    { class: `b-field${f.short ? "" : " att-field-long"}` },
                    h("strong", { class: "att-field-title" }, f.title || ""),
                    h("span", { class: "mrkdwn" }, mrkdwn(f.value || "")),
                  ),
                ),
              )
            : null,
          Array.isArray(a.blocks) && a.blocks.length ? renderBlocks(a.blocks, ctx) : null,
          !a.text && !a.blocks && !fields.length && !title && a.fallback
            ? h("div", null, a.fallback)
            : null,
          a.footer ? h("div", { class: "b-context" }, mrkdwn(a.footer)) : null,
        ),
      ),
    );
  }

  function messageMeta(msg, name, extra) {
    return h(
      "div",
      { class: "msg-meta" },
      h("span", { class: "msg-author" }, name),
      msg.user && msg.user === ui.state.bot_user_id
        ? h("span", { class: "badge badge-app" }, "APP")
        : null,
      h(
        "time",
        { class: "msg-time", title: longTime(msg.ts), datetime: tsDate(msg.ts)?.toISOString() },
        shortTime(msg.ts),
      ),
      msg.edited ? h("span", { class: "msg-edited" }, "(edited)") : null,
      extra,
    );
  }

  function renderMessage(msg, channel, testid) {
    const name = authorName(msg);
    const replies = Array.isArray(msg.replies) ? msg.replies : [];
    const count = Math.max(Number(msg.reply_count) || 0, replies.length);
    const isThreadOpen = testid === "message" && ui.thread === msg.ts;
    return h(
      "article",
      {
        class: `msg${isThreadOpen ? " msg-thread-open" : ""}${
          ui.highlight === msg.ts ? " msg-highlight" : ""
        }`,
        testid,
        dataset: { ts: msg.ts },
      },
      avatar(msg.user, name),
      h(
        "div",
        { class: "msg-body" },
        messageMeta(msg, name),
        messageContent(msg, { channel, message_ts: msg.ts }),
        messageShortcuts(msg, channel),
        testid === "message" && count > 0
          ? h(
              "button",
              {
                type: "button",
                class: "replies-link",
                testid: "replies-link",
                onclick: () => openThread(msg.ts),
              },
              plural(count, "reply", "replies"),
              replies.length
                ? h(
                    "span",
                    { class: "replies-last" },
                    `Last reply ${shortTime(replies[replies.length - 1].ts)}`,
                  )
                : null,
            )
          : null,
      ),
    );
  }

  // Slack offers an app's message shortcuts in each message's "More actions" menu.
  function messageShortcuts(msg, channel) {
    if (!ui.shortcuts.length) return null;
    return h(
      "div",
      { class: "msg-shortcuts" },
      ...ui.shortcuts.map((sc) =>
        h(
          "button",
          {
            type: "button",
            class: "shortcut",
            testid: "shortcut",
            title: "Message shortcut",
            onclick: () => runShortcut(sc, channel, msg.ts),
          },
          `⋯ ${sc.name}`,
        ),
      ),
    );
  }

  async function runShortcut(sc, channel, ts) {
    const res = await post("/_emulator/shortcut", {
      user: ui.user,
      channel,
      message_ts: ts,
      callback_id: sc.callback_id,
    });
    const data = res.data || {};
    const status = typeof data.status === "number" ? data.status : res.httpStatus;
    if (!(res.ok && status >= 200 && status < 300))
      toast(res.ok ? answerProblem(`“${sc.name}”`, status, data) : errorText(res), "error");
    else toast(`${sc.name}: sent`, "info");
  }

  function renderEphemeral(e, inChannel) {
    // Slack's own notices (an unknown command) come from Slackbot, not from the app.
    const sender = e.sender || ui.state.bot_user_id;
    const name = e.sender ? (e.sender === SLACKBOT ? "Slackbot" : userLabel(e.sender)) : botName();
    const msg = { ...e, user: sender };
    const parent =
      inChannel && e.thread_ts
        ? channelMessages(e.channel).find((m) => m.ts === e.thread_ts)
        : null;
    return h(
      "article",
      { class: "msg msg-ephemeral", testid: "ephemeral", dataset: { ts: e.ts } },
      avatar(sender, name),
      h(
        "div",
        { class: "msg-body" },
        messageMeta(
          msg,
          name,
          h("span", { class: "only-you" }, "Only visible to you"),
          parent
            ? h(
                "button",
                { type: "button", class: "in-thread", onclick: () => openThread(parent.ts) },
                "in a thread",
              )
            : null,
        ),
        messageContent(e, { channel: e.channel, ephemeral_ts: e.ts }),
        h(
          "button",
          {
            type: "button",
            class: "dismiss",
            onclick: () => {
              ui.dismissed.add(e.ts);
              render();
            },
          },
          "Dismiss",
        ),
      ),
    );
  }

  function openThread(ts) {
    ui.thread = ts;
    render();
  }

  function closeThread() {
    ui.thread = null;
    render();
  }

  function renderThread() {
    const pane = $("thread-pane");
    const parent = ui.thread ? channelMessages(ui.channel).find((m) => m.ts === ui.thread) : null;
    if (!parent) {
      ui.thread = null;
      pane.hidden = true;
      pane.replaceChildren();
      $("app").classList.remove("with-thread");
      return;
    }
    const reopened = pane.hidden || pane.dataset.ts !== parent.ts;
    pane.hidden = false;
    pane.dataset.ts = parent.ts;
    $("app").classList.add("with-thread");
    const ch = findChannel(ui.channel);
    const replies = Array.isArray(parent.replies) ? parent.replies : [];
    let body = pane.querySelector(".thread-body");
    if (!body) {
      body = h("div", { class: "thread-body" });
      pane.replaceChildren(
        h(
          "header",
          { class: "thread-header" },
          h(
            "div",
            null,
            h("h2", { class: "thread-title" }, "Thread"),
            h("span", { class: "thread-channel" }, ch ? `#${ch.name}` : ""),
          ),
          h(
            "button",
            {
              type: "button",
              class: "icon-btn",
              "aria-label": "Close thread",
              testid: "thread-close",
              onclick: closeThread,
            },
            "×",
          ),
        ),
        body,
      );
    } else {
      pane.querySelector(".thread-channel").textContent = ch ? `#${ch.name}` : "";
    }
    const items = [
      ...replies.map((r) => ({
        ts: r.ts,
        node: () => renderMessage(r, ui.channel, "thread-reply"),
      })),
      ...threadEphemerals(ui.channel, parent.ts).map((e) => ({
        ts: e.ts,
        node: () => renderEphemeral(e, false),
      })),
    ].sort((a, b) => tsCompare(a.ts, b.ts));
    keepScroll(body, !reopened, () => {
      body.replaceChildren(
        renderMessage(parent, ui.channel, "thread-parent"),
        h(
          "div",
          { class: "thread-divider" },
          h("span", null, plural(replies.length, "reply", "replies")),
        ),
        ...items.map((item) => item.node()),
      );
    });
  }

  function selectChannel(id) {
    if (id === ui.channel) return;
    ui.channel = id;
    ui.thread = null;
    store("opsloop.sandbox.channel", id);
    render();
  }

  // ---------------------------------------------------------------- modals

  function currentView() {
    const views = ui.state.views.filter(
      (v) => v && v.user === ui.user && !v.closed && !ui.closedViews.has(v.id),
    );
    return views.length ? views[views.length - 1] : null;
  }

  function viewErrors(v) {
    return { ...(ui.localErrors[v.id] || {}), ...(v.errors || {}) };
  }

  function draftsOf(viewId) {
    ui.drafts[viewId] = ui.drafts[viewId] || {};
    return ui.drafts[viewId];
  }

  function setDraft(viewId, blockId, actionId, value) {
    const drafts = draftsOf(viewId);
    drafts[blockId] = drafts[blockId] || {};
    drafts[blockId][actionId] = value;
  }

  const optionValue = (o) => ({ text: o.text, value: o.value });

  /** An input element's value as view_submission carries it, before the person changes it. */
  function initialValue(el) {
    switch (el.type) {
      case "static_select":
      case "external_select":
      case "radio_buttons":
        return { selected_option: el.initial_option ? optionValue(el.initial_option) : null };
      case "multi_static_select":
      case "multi_external_select":
      case "checkboxes":
        return { selected_options: (el.initial_options || []).map(optionValue) };
      case "users_select":
        return { selected_user: el.initial_user || null };
      case "multi_users_select":
        return { selected_users: el.initial_users || [] };
      case "conversations_select":
        return { selected_conversation: el.initial_conversation || null };
      case "channels_select":
        return { selected_channel: el.initial_channel || null };
      case "datepicker":
        return { selected_date: el.initial_date || null };
      case "timepicker":
        return { selected_time: el.initial_time || null };
      default:
        return el.initial_value === undefined || el.initial_value === null
          ? ""
          : String(el.initial_value);
    }
  }

  function currentValue(viewId, blockId, el) {
    const block = draftsOf(viewId)[blockId];
    if (block && Object.prototype.hasOwnProperty.call(block, el.action_id))
      return block[el.action_id];
    return initialValue(el);
  }

  function isEmpty(value) {
    if (value === null || value === undefined) return true;
    if (typeof value === "string") return value.trim() === "";
    return Object.values(value).every(
      (v) => v === null || v === "" || (Array.isArray(v) && v.length === 0),
    );
  }

  function renderInputControl(v, block, id) {
    const el = block.element || {};
    const value = currentValue(v.id, block.block_id, el);
    const update = (next) => setDraft(v.id, block.block_id, el.action_id, next);
    const placeholder = plainText(el.placeholder);
    const common = { id, dataset: { blockId: block.block_id || "", actionId: el.action_id || "" } };
    switch (el.type) {
      case "plain_text_input":
      case "email_text_input":
      case "url_text_input":
      case "number_input": {
        const control = el.multiline
          ? h("textarea", { ...common, class: "field-input", rows: 4, placeholder })
          : h("input", {
              ...common,
              class: "field-input",
              type: { email_text_input: "email", url_text_input: "url" }[el.type] || "text",
              inputmode: el.type === "number_input" ? "decimal" : null,
              placeholder,
              maxlength: el.max_length,
            });
        control.value = typeof value === "string" ? value : "";
        control.addEventListener("input", () => update(control.value));
        return control;
      }
      case "static_select":
      case "external_select":
      case "users_select":
      case "conversations_select":
      case "channels_select": {
        const options =
          el.type === "users_select"
            ? userOptions()
            : el.type === "static_select" || el.type === "external_select"
              ? selectOptions(el)
              : channelOptions();
        const field = {
          users_select: "selected_user",
          conversations_select: "selected_conversation",
          channels_select: "selected_channel",
        }[el.type];
        const chosen = field ? value[field] : value.selected_option && value.selected_option.value;
        const control = h(
          "select",
          { ...common, class: "field-input" },
          h("option", { value: "", selected: !chosen }, placeholder || "Select…"),
          optionNodes(
            options,
            (o) => chosen !== null && chosen !== undefined && o.value === chosen,
          ),
        );
        control.addEventListener("change", () => {
          const [picked] = pickedOptions(control, options);
          const opt = picked ? picked.option : null;
          if (field) update({ [field]: opt ? opt.value : null });
          else update({ selected_option: opt ? optionValue(opt) : null });
        });
        return control;
      }
      case "multi_static_select":
      case "multi_external_select":
      case "multi_users_select": {
        const isUsers = el.type === "multi_users_select";
        const options = isUsers ? userOptions() : selectOptions(el);
        const chosen = new Set(
          isUsers ? value.selected_users || [] : (value.selected_options || []).map((o) => o.value),
        );
        const control = h(
          "select",
          {
            ...common,
            class: "field-input field-multi",
            multiple: true,
            size: Math.min(Math.max(options.length, 2), 6),
          },
          optionNodes(options, (o) => chosen.has(o.value)),
        );
        control.addEventListener("change", () => {
          const picked = pickedOptions(control, options).map((p) => p.option);
          update(
            isUsers
              ? { selected_users: picked.map((o) => o.value) }
              : { selected_options: picked.map(optionValue) },
          );
        });
        return h(
          "div",
          null,
          control,
          h("div", { class: "field-note" }, "Ctrl/⌘-click to pick several."),
        );
      }
      case "checkboxes":
      case "radio_buttons": {
        const isRadio = el.type === "radio_buttons";
        const chosen = new Set(
          isRadio
            ? value.selected_option
              ? [value.selected_option.value]
              : []
            : (value.selected_options || []).map((o) => o.value),
        );
        const boxes = (el.options || []).map((o, i) => {
          const input = h("input", {
            type: isRadio ? "radio" : "checkbox",
            name: id,
            value: String(i),
            checked: chosen.has(o.value),
          });
          input.addEventListener("change", () => {
            const picked = boxes.filter((b) => b.input.checked).map((b) => optionValue(b.option));
            update(isRadio ? { selected_option: picked[0] || null } : { selected_options: picked });
          });
          return { input, option: o };
        });
        return h(
          "div",
          { ...common, class: "field-choices", role: isRadio ? "radiogroup" : "group" },
          boxes.map(({ input, option }) =>
            h(
              "label",
              { class: "choice" },
              input,
              h("span", null, textObject(option.text)),
              option.description
                ? h("span", { class: "choice-desc" }, textObject(option.description))
                : null,
            ),
          ),
        );
      }
      case "datepicker":
      case "timepicker": {
        const isDate = el.type === "datepicker";
        const key = isDate ? "selected_date" : "selected_time";
        const control = h("input", {
          ...common,
          class: "field-input",
          type: isDate ? "date" : "time",
        });
        control.value = value[key] || "";
        control.addEventListener("input", () => update({ [key]: control.value || null }));
        return control;
      }
      default:
        return renderUnknown(el);
    }
  }

  function renderInputBlock(v, block, errors) {
    const id = `field-${v.id}-${block.block_id}`;
    const error = errors[block.block_id];
    return h(
      "div",
      { class: `field${error ? " has-error" : ""}`, dataset: { blockId: block.block_id || "" } },
      h(
        "label",
        { class: "field-label", for: id },
        plainText(block.label),
        block.optional ? h("span", { class: "field-optional" }, " (optional)") : null,
      ),
      renderInputControl(v, block, id),
      block.hint ? h("div", { class: "field-hint" }, plainText(block.hint)) : null,
      error
        ? h("div", { class: "field-error", role: "alert", testid: "field-error" }, error)
        : null,
    );
  }

  function collectValues(v) {
    const values = {};
    const missing = {};
    for (const block of v.view.blocks || []) {
      if (!block || block.type !== "input" || !block.element) continue;
      const value = currentValue(v.id, block.block_id, block.element);
      values[block.block_id] = { [block.element.action_id]: value };
      if (!block.optional && isEmpty(value))
        missing[block.block_id] = "Please complete this required field.";
    }
    return { values, missing };
  }

  function renderModal() {
    const root = $("modal-root");
    const v = currentView();
    if (!v || !v.view) {
      if (ui.modalKey !== null) root.replaceChildren();
      ui.modalKey = null;
      return;
    }
    const errors = viewErrors(v);
    const key = JSON.stringify([v.id, v.view, errors]);
    if (key === ui.modalKey) return;
    const focused =
      document.activeElement && root.contains(document.activeElement)
        ? document.activeElement.id
        : null;
    ui.modalKey = key;
    const view = v.view;
    const ctx = { channel: ui.channel, inert: true };
    const submit = view.submit ? plainText(view.submit) : null;
    const close = plainText(view.close) || (submit ? "Cancel" : "Close");
    const form = h(
      "form",
      {
        class: "modal-body",
        novalidate: true,
        onsubmit: (ev) => {
          ev.preventDefault();
          if (submit) submitView(v);
        },
      },
      (view.blocks || []).map((b) =>
        b && b.type === "input" ? renderInputBlock(v, b, errors) : renderBlock(b || {}, ctx),
      ),
      // Lets Enter in a single-line input submit, as in Slack.
      h("button", { type: "submit", hidden: true, tabindex: -1 }),
    );
    const generalError = Object.entries(errors).filter(
      ([blockId]) => !(view.blocks || []).some((b) => b && b.block_id === blockId),
    );
    root.replaceChildren(
      h(
        "div",
        { class: "modal-backdrop" },
        h(
          "div",
          {
            class: "modal",
            role: "dialog",
            "aria-modal": "true",
            "aria-labelledby": `modal-title-${v.id}`,
            testid: "modal",
            dataset: { viewId: v.id, callbackId: view.callback_id || "" },
          },
          h(
            "header",
            { class: "modal-header" },
            h(
              "h2",
              { id: `modal-title-${v.id}`, class: "modal-title" },
              emojify(plainText(view.title) || "Modal"),
            ),
            h(
              "button",
              {
                type: "button",
                class: "icon-btn",
                "aria-label": "Close",
                onclick: () => closeView(v),
              },
              "×",
            ),
          ),
          form,
          generalError.length
            ? h(
                "div",
                { class: "modal-error", role: "alert" },
                generalError.map(([, msg]) => h("div", null, msg)),
              )
            : null,
          h(
            "footer",
            { class: "modal-footer" },
            h(
              "button",
              {
                type: "button",
                class: "btn btn-default",
                testid: "modal-cancel",
                onclick: () => closeView(v),
              },
              close,
            ),
            submit
              ? h(
                  "button",
                  {
                    type: "button",
                    class: "btn btn-primary",
                    testid: "modal-submit",
                    onclick: () => submitView(v),
                  },
                  submit,
                )
              : null,
          ),
        ),
      ),
    );
    const again = focused && document.getElementById(focused);
    if (again) again.focus();
    else if (!focused) {
      const firstField = root.querySelector(".field-input, .field-choices input");
      if (firstField) firstField.focus();
    }
  }

  async function submitView(v) {
    const { values, missing } = collectValues(v);
    if (Object.keys(missing).length) {
      ui.localErrors[v.id] = missing;
      ui.modalKey = null;
      renderModal();
      return;
    }
    const button = document.querySelector('[data-testid="modal-submit"]');
    if (button) {
      button.disabled = true;
      button.classList.add("is-sending");
    }
    delete ui.localErrors[v.id];
    const res = await post("/_emulator/view_submission", { user: ui.user, view_id: v.id, values });
    const data = res.data || {};
    const errors = data.errors && typeof data.errors === "object" ? data.errors : null;
    const status = typeof data.status === "number" ? data.status : res.httpStatus;
    if (errors && Object.keys(errors).length) ui.localErrors[v.id] = errors;
    else if (!res.ok) toast(errorText(res), "error");
    else if (status < 200 || status >= 300) toast(answerProblem("The form", status, data), "error");
    ui.modalKey = null;
    renderModal();
  }

  async function closeView(v) {
    ui.closedViews.add(v.id);
    renderModal();
    const res = await post("/_emulator/view_close", { view_id: v.id });
    if (!res.ok) toast(errorText(res), "error");
  }

  // ---------------------------------------------------------------- confirm dialog and toasts

  /** Slack's confirmation dialog of a button ("Are you sure?"), resolved true on confirm. */
  function confirmDialog(confirm) {
    const root = $("confirm-root");
    return new Promise((resolve) => {
      const done = (answer) => {
        root.replaceChildren();
        resolve(answer);
      };
      const danger = confirm.style === "danger";
      root.replaceChildren(
        h(
          "div",
          { class: "modal-backdrop" },
          h(
            "div",
            {
              class: "modal modal-small",
              role: "alertdialog",
              "aria-modal": "true",
              testid: "confirm",
            },
            h(
              "header",
              { class: "modal-header" },
              h("h2", { class: "modal-title" }, plainText(confirm.title) || "Are you sure?"),
            ),
            h("div", { class: "modal-body" }, textObject(confirm.text)),
            h(
              "footer",
              { class: "modal-footer" },
              h(
                "button",
                {
                  type: "button",
                  class: "btn btn-default",
                  testid: "confirm-deny",
                  onclick: () => done(false),
                },
                plainText(confirm.deny) || "Cancel",
              ),
              h(
                "button",
                {
                  type: "button",
                  class: `btn ${danger ? "btn-danger" : "btn-primary"}`,
                  testid: "confirm-ok",
                  onclick: () => done(true),
                },
                plainText(confirm.confirm) || "Yes",
              ),
            ),
          ),
        ),
      );
      root.querySelector('[data-testid="confirm-ok"]').focus();
    });
  }

  function toast(text, kind) {
    const el = h("div", { class: `toast toast-${kind || "info"}`, testid: "toast" }, text);
    $("toasts").append(el);
    setTimeout(() => el.remove(), 5000);
  }

  // ---------------------------------------------------------------- command box

  // Only commands that are registered today; each capability adds its own when it lands.
  // `opsloop sandbox` adds more through GET /_sandbox/info (`examples`).
  const EXAMPLES = ["/ops help", "/ops status", "/task", "/task list", "/build web"];
  let statusTimer = null;

  function commandStatus(text, kind) {
    const el = $("command-status");
    el.textContent = text;
    el.dataset.kind = kind || "";
    clearTimeout(statusTimer);
    if (kind !== "error")
      statusTimer = setTimeout(() => {
        el.textContent = "";
      }, 2500);
  }

  async function sendCommand() {
    const input = $("command-input");
    const raw = input.value.trim();
    if (!raw) return;
    if (!raw.startsWith("/")) {
      commandStatus("Slash commands start with /, for example /ops help.", "error");
      return;
    }
    if (!ui.user || !ui.channel) {
      commandStatus("Waiting for the sandbox…", "error");
      return;
    }
    const space = raw.search(/\s/);
    const command = space < 0 ? raw : raw.slice(0, space);
    const text = space < 0 ? "" : raw.slice(space + 1).trim();
    if (ui.history[ui.history.length - 1] !== raw) ui.history.push(raw);
    ui.historyPos = ui.history.length;
    commandStatus(`Sending ${command}…`, "pending");
    const res = await post("/_emulator/command", {
      user: ui.user,
      channel: ui.channel,
      command,
      text,
    });
    if (!res.ok) {
      commandStatus(errorText(res), "error");
      return;
    }
    const data = res.data || {};
    const status = typeof data.status === "number" ? data.status : res.httpStatus;
    if (data.by_slack) {
      // Slack itself answered (Slackbot's message in the channel), as it does for a typo.
      commandStatus(`${command} is not a command here: see Slackbot's answer`, "pending");
    } else if (status >= 200 && status < 300) {
      if (input.value.trim() === raw) input.value = "";
      // 2xx with a note: the emulator could not apply the answer (Slack would refuse it too).
      if (data.note) commandStatus(`${command}: ${data.note}`, "error");
      else commandStatus(`Sent ${command}`, "ok");
    } else {
      commandStatus(answerProblem(command, status, data), "error");
    }
  }

  function setupCommandBox() {
    const input = $("command-input");
    $("command-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      sendCommand();
    });
    input.addEventListener("keydown", (ev) => {
      if (ev.key !== "ArrowUp" && ev.key !== "ArrowDown") return;
      if (!ui.history.length) return;
      ev.preventDefault();
      ui.historyPos = Math.max(
        0,
        Math.min(ui.history.length, ui.historyPos + (ev.key === "ArrowUp" ? -1 : 1)),
      );
      input.value = ui.history[ui.historyPos] || "";
    });
    renderExamples(EXAMPLES);
  }

  /** The example chips under the command box: a click puts the command in the box. */
  function renderExamples(examples) {
    const input = $("command-input");
    $("command-examples").replaceChildren(
      ...examples.map((example) =>
        h(
          "button",
          {
            type: "button",
            class: "example",
            onclick: () => {
              input.value = example;
              input.focus();
            },
          },
          example,
        ),
      ),
    );
  }

  function setupUserPicker() {
    $("user-picker").addEventListener("change", (ev) => {
      ui.user = ev.target.value;
      store("opsloop.sandbox.user", ui.user);
      render();
    });
  }

  // ---------------------------------------------------------------- sample alert

  // `opsloop sandbox` serves GET /_sandbox/info and POST /_sandbox/alert, which plays
  // Alertmanager's part: it sends the bot a real webhook for one sample alert group. The page
  // alone (without those routes) keeps the section hidden. The controls are built once and only
  // their text and disabled state change afterwards, so a click never lands on a node that a
  // re-render just replaced.
  const sample = { info: null, busy: false, built: false };

  function principalLabel(id) {
    if (!ui.state) return id;
    if (id.startsWith("S")) {
      const group = ui.state.usergroups.find((g) => g.id === id);
      const members = group && Array.isArray(group.members) ? group.members : [];
      const names = members.map((m) => (findUser(m) || {}).name || m);
      const handle = `@${groupHandle(id) || id}`;
      return names.length ? `${handle} (${names.join(", ")})` : handle;
    }
    const user = findUser(id);
    return `@${user ? user.name : id}`;
  }

  function sampleAbout(info) {
    const where = info.channel
      ? (ui.state && findChannel(info.channel) && channelLabel(findChannel(info.channel))) ||
        info.channel
      : null;
    const parts = [
      `Sends ${info.title} (${info.severity}) to the bot's /hooks/alertmanager, as ` +
        "Alertmanager would.",
    ];
    if (!where) parts.push(" No alerts route matches it: the bot tracks it but posts it nowhere.");
    else if (info.escalate_after && info.escalate_to.length)
      parts.push(
        ` It goes to ${where}; unacknowledged for ${info.escalate_after}, it escalates to ` +
          `${info.escalate_to.map(principalLabel).join(", ")}.`,
      );
    else parts.push(` It goes to ${where}.`);
    return parts.join("");
  }

  function sampleState(info) {
    const n = info.firing.length;
    if (!n) return "Nothing firing.";
    return `Firing: ${plural(n, "alert", "alerts")} (${info.firing.join(", ")}).`;
  }

  function buildSampleAlert() {
    const button = (testid, label, action, primary) =>
      h(
        "button",
        {
          type: "button",
          class: `btn btn-small${primary ? " btn-primary" : ""}`,
          testid,
          id: testid,
          onclick: () => sendSampleAlert(action),
        },
        label,
      );
    $("alert-controls").replaceChildren(
      h("p", { class: "sample-about", id: "alert-about", testid: "alert-about" }),
      h(
        "div",
        { class: "sample-buttons" },
        button("fire-alert", "Fire sample alert", "fire", true),
        button("add-alert", "Add an alert to the group", "add", false),
        button("resolve-alert", "Resolve sample alert", "resolve", false),
      ),
      h("div", { class: "sample-state", id: "alert-state", testid: "alert-state" }),
      h("div", {
        class: "command-status",
        id: "alert-status",
        testid: "alert-status",
        role: "status",
        "aria-live": "polite",
      }),
    );
    sample.built = true;
  }

  function renderSampleAlert() {
    const info = sample.info;
    if (!info || !sample.built) return;
    $("alert-about").textContent = sampleAbout(info);
    $("alert-state").textContent = sampleState(info);
    const firing = info.firing.length;
    $("fire-alert").disabled = sample.busy || firing > 0;
    $("add-alert").disabled = sample.busy || !firing || firing >= info.max_alerts;
    $("resolve-alert").disabled = sample.busy || !firing;
  }

  function sampleStatus(text, kind) {
    const el = $("alert-status");
    el.textContent = text;
    el.dataset.kind = kind || "";
  }

  const SAMPLE_DONE = {
    fire: "Alertmanager's notification was accepted",
    add: "The group's next notification was accepted",
    resolve: "The resolved notification was accepted",
  };

  async function sendSampleAlert(action) {
    if (sample.busy) return;
    sample.busy = true;
    renderSampleAlert();
    sampleStatus("Sending the webhook…", "pending");
    const res = await post("/_sandbox/alert", { action });
    sample.busy = false;
    const data = res.data || {};
    if (!res.ok) {
      sampleStatus(errorText(res), "error");
    } else if (data.status >= 200 && data.status < 300) {
      sample.info = data;
      const where = data.channel && findChannel(data.channel);
      sampleStatus(
        `${SAMPLE_DONE[action]} (HTTP ${data.status})${where ? `; see ${channelLabel(where)}` : ""}.`,
        "ok",
      );
      if (where && action === "fire") selectChannel(data.channel);
    } else {
      sampleStatus(answerProblem("/hooks/alertmanager", data.status, data), "error");
    }
    renderSampleAlert();
  }

  async function setupSampleAlert() {
    let info = null;
    try {
      const res = await fetch("/_sandbox/info", { cache: "no-store" });
      if (res.ok) info = await res.json();
    } catch (_) {
      info = null;
    }
    if (info && Array.isArray(info.shortcuts)) {
      ui.shortcuts = info.shortcuts;
      render();
    }
    // Examples that depend on what the sandbox set up (e.g. /deploy web only with Docker).
    if (info && Array.isArray(info.examples)) {
      const extra = info.examples.filter((e) => typeof e === "string" && e.startsWith("/"));
      renderExamples([...new Set([...EXAMPLES, ...extra])]);
    }
    if (!info || !info.alerts || !info.alerts.available) return;
    sample.info = info.alerts;
    buildSampleAlert();
    renderSampleAlert();
    $("sandbox-controls").hidden = false;
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    if ($("confirm-root").firstChild) {
      $("confirm-root").querySelector('[data-testid="confirm-deny"]').click();
    } else if (ui.state && ui.modalKey !== null) {
      const v = currentView();
      if (v) closeView(v);
    } else if (ui.thread) {
      closeThread();
    }
  });

  // ---------------------------------------------------------------- permalinks

  // chat.getPermalink's links open the page at #/archives/<channel>/p<digits>[?thread_ts=<ts>].
  function permalinkTarget() {
    const m = /^#\/archives\/([A-Z0-9]+)\/p(\d{7,})(?:\?(.*))?$/.exec(location.hash);
    if (!m) return null;
    const ts = `${m[2].slice(0, -6)}.${m[2].slice(-6)}`;
    const thread = new URLSearchParams(m[3] || "").get("thread_ts");
    return { channel: m[1], ts, thread: thread && thread !== ts ? thread : null };
  }

  /** Shows the permalinked message once the state has it: its channel, its thread when it is
   * a reply, scrolled into view and highlighted. */
  function showPermalink() {
    const target = ui.permalink;
    if (!target || !ui.state || !findChannel(target.channel)) return;
    const parent = channelMessages(target.channel).find(
      (m) =>
        m.ts === (target.thread || target.ts) || (m.replies || []).some((r) => r.ts === target.ts),
    );
    if (!parent) return;
    ui.permalink = null;
    const reply = parent.ts !== target.ts;
    if (ui.channel !== target.channel) selectChannel(target.channel);
    if (reply) openThread(parent.ts);
    const where = reply ? $("thread-pane") : $("messages");
    const el = where.querySelector(`[data-ts="${CSS.escape(target.ts)}"]`);
    if (!el) return;
    ui.highlight = target.ts; // kept through re-renders, as Slack keeps a linked message lit
    el.classList.add("msg-highlight");
    el.scrollIntoView({ block: "center" });
  }

  window.addEventListener("hashchange", () => {
    ui.permalink = permalinkTarget();
    showPermalink();
  });

  /** Starts a page session: the ephemerals and the modal of the session before are gone, as
   * when a Slack client reloads. A page served without the route goes on as it is. */
  async function startSession() {
    try {
      await fetch("/_emulator/session", { method: "POST", cache: "no-store" });
    } catch (_) {
      // The poll loop reports a sandbox that does not answer.
    }
  }

  // On a phone the sidebar's less used parts (who you are, the sample alert) are behind Menu.
  $("menu-toggle").addEventListener("click", () => {
    const open = $("app").classList.toggle("menu-open");
    $("menu-toggle").setAttribute("aria-expanded", String(open));
  });

  ui.permalink = permalinkTarget();
  setupCommandBox();
  setupUserPicker();
  setupSampleAlert();
  startSession().then(pollLoop);
})();

