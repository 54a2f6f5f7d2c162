// The page's clocks: an alert's time in its exchange's zone (or in UTC, said so), named as its market names it.

// CLDR names a zone's abbreviation only in the locales where it is in use: en-US says
// "GMT+8" for Hong Kong, en-HK says "HKT". The reader's own locale is asked first.
const NAMING_LOCALES = [undefined, "en-US", "en-GB", "en-HK", "en-SG", "en-AU", "en-IN", "en-CA", "ja-JP"];
const ABBREVIATION = /^[A-Z]{2,5}$/;
// A winter and a summer day: a locale must name the zone on both sides of its daylight saving.
const PROBES = [new Date("2025-01-15T12:00:00Z"), new Date("2025-07-15T12:00:00Z")];

const clocks = new Map(); // time zone -> {parts, zone}: Intl formatters are slow to make

function zoneFormat(locale, timeZone) {
  return new Intl.DateTimeFormat(locale, { timeZone, timeZoneName: "short" });
}

function nameIn(format, date) {
  const part = format.formatToParts(date).find((p) => p.type === "timeZoneName");
  return part ? part.value : "";
}

function clock(timeZone) {
  let found = clocks.get(timeZone);
  if (found) return found;
  let zone = zoneFormat(undefined, timeZone);
  for (const locale of NAMING_LOCALES) {
    const format = zoneFormat(locale, timeZone);
    if (PROBES.every((date) => ABBREVIATION.test(nameIn(format, date)))) {
      zone = format;
      break;
    }
  }
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone, month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  found = { parts, zone };
  clocks.set(timeZone, found);
  return found;
}

/** A time zone the browser knows, else UTC (a zone from the server is never trusted blindly). */
export function knownZone(timeZone) {
  if (!timeZone) return "UTC";
  try {
    clock(timeZone);
    return timeZone;
  } catch (error) {
    return "UTC"; // a RangeError: not an IANA name this browser has
  }
}

/** The zone's short name at that moment: "HKT", "EDT", "UTC" (or "GMT+8" when none is known). */
export function zoneName(timeZone, date) {
  return nameIn(clock(knownZone(timeZone)).zone, date);
}

/** An instant read on a zone's clock: {day: "09-18", time: "16:00:00", minute: "16:00", zone: "HKT"}. */
export function readClock(iso, timeZone) {
  const zoneId = knownZone(timeZone);
  const date = new Date(iso);
  const get = {};
  for (const part of clock(zoneId).parts.formatToParts(date)) get[part.type] = part.value;
  return {
    day: `${get.month}-${get.day}`,
    time: `${get.hour}:${get.minute}:${get.second}`,
    minute: `${get.hour}:${get.minute}`,
    zone: zoneName(zoneId, date),
  };
}
