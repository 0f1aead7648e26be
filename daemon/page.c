/* The status page: every pipeline's live preview and its numbers, for
 * whoever opens http://HOST:PORT/ in a browser. The cards are rendered
 * here so the previews show without scripts; a small script refreshes the
 * numbers from the API every second. Off loopback the page is opened as
 * /?access_token=TOKEN and passes the token on to what it fetches. Each
 * preview sits at a fixed place
 * (first one at x=24, y=72, 640x360 CSS pixels) so a test can find it. */
#include <stdio.h>
#include <string.h>

#include "core/redact.h"
#include "daemon/internal.h"

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<title>mmsd</title>\n<style>\n"
    "body{margin:0;font:14px/1.4 system-ui,sans-serif;background:#eef0f3;color:#1b1f24}\n"
    "header{height:48px;box-sizing:border-box;padding:12px 16px;background:#1b1f24;"
    "color:#fff;font-weight:600}\n"
    ".cards{display:flex;flex-wrap:wrap;gap:16px;padding:16px}\n"
    ".card{background:#fff;padding:8px;border-radius:6px;width:640px}\n"
    ".card img{display:block;width:640px;height:360px;object-fit:contain;background:#000}\n"
    ".card h2{font-size:16px;margin:8px 0 4px}\n"
    ".state{font-weight:600}.ok{color:#137333}.bad{color:#b3261e}\n"
    "table{border-collapse:collapse}td{padding:1px 12px 1px 0}\n"
    ".reasons{color:#b3261e;margin:4px 0}\n"
    "</style></head><body>\n<header>mmsd — surgical tool segmentation</header>\n"
    "<div class=\"cards\">\n";

static const char page_tail[] =
    "</div>\n<script>\n"
    "const tok=new URLSearchParams(location.search).get('access_token');\n"
    "const auth=tok?'?access_token='+encodeURIComponent(tok):'';\n"
    "if(tok) for(const i of document.querySelectorAll('.card img')) i.src+=auth;\n"
    "function fmt(v){return v===undefined||v===null?'-':v;}\n"
    "async function refresh(){\n"
    " try{\n"
    "  const r=await fetch('/api/v1/pipelines'+auth,{cache:'no-store'});\n"
    "  const j=await r.json();\n"
    "  for(const p of j.pipelines){\n"
    "   const c=document.getElementById('card-'+p.name); if(!c) continue;\n"
    "   const s=c.querySelector('.state'); s.textContent=p.state;\n"
    "   s.className='state '+(p.healthy?'ok':'bad');\n"
    "   c.querySelector('.reasons').textContent=p.reasons.join('; ');\n"
    "   const t=p.stats||{}, l=(p.latency_ms||{}).infer||{}, rec=p.recording||{};\n"
    "   c.querySelector('.fps').textContent=fmt(t.fps);\n"
    "   c.querySelector('.frames').textContent=fmt(t.decoded)+' / '+fmt(t.inferred)+' / '"
    "+fmt(t.dropped)+' / '+fmt(t.written);\n"
    "   c.querySelector('.infer').textContent=l.p50===undefined?'-':l.p50+' / '+l.p95;\n"
    "   c.querySelector('.rec').textContent=!rec.enabled?'not configured':rec.error?"
    "'failed: '+rec.error:rec.recording?(rec.file||'on'):'off';\n"
    "  }\n"
    " }catch(e){}\n"
    "}\n"
    "refresh(); setInterval(refresh,1000);\n"
    "</script>\n</body></html>\n";

static void escaped(struct mmsd_http_response *res, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': mmsd_http_res_printf(res, "&lt;"); break;
        case '>': mmsd_http_res_printf(res, "&gt;"); break;
        case '&': mmsd_http_res_printf(res, "&amp;"); break;
        case '"': mmsd_http_res_printf(res, "&quot;"); break;
        default: mmsd_http_res_append(res, s, 1);
        }
    }
}

static void card(struct mmsd_http_response *res, const struct mmsd_pipe *pp)
{
    const char *n = pp->conf.name; /* [A-Za-z0-9._-]: safe in HTML and URLs */
    char input[1024];
    mms_redact_url(pp->conf.o.input ? pp->conf.o.input : "", input, sizeof(input));
    mmsd_http_res_printf(res,
                         "<div class=\"card\" id=\"card-%s\">\n"
                         "<img id=\"preview-%s\" src=\"/preview/%s.mjpeg\" alt=\"%s preview\">\n"
                         "<h2>%s <span class=\"state\">%s</span></h2>\n"
                         "<div class=\"reasons\"></div>\n<table>\n"
                         "<tr><td>input</td><td>",
                         n, n, n, n, n, mmsd_pipe_state_name(pp->state));
    escaped(res, input);
    mmsd_http_res_printf(res, "</td></tr>\n<tr><td>model</td><td>");
    escaped(res, pp->model);
    mmsd_http_res_printf(res,
                         "</td></tr>\n"
                         "<tr><td>fps</td><td class=\"fps\">-</td></tr>\n"
                         "<tr><td>frames decoded / inferred / dropped / written</td>"
                         "<td class=\"frames\">-</td></tr>\n"
                         "<tr><td>inference ms p50 / p95</td><td class=\"infer\">-</td></tr>\n"
                         "<tr><td>recording</td><td class=\"rec\">-</td></tr>\n"
                         "</table>\n</div>\n");
}

int mmsd_page_write(struct mmsd *d, struct mmsd_http_response *res)
{
    mmsd_http_res_content_type(res, "text/html; charset=utf-8");
    mmsd_http_res_header(res, "Cache-Control", "no-store");
    int rc = mmsd_http_res_append(res, page_head, sizeof(page_head) - 1);
    if (!d->pipes)
        mmsd_http_res_printf(res, "<p>No pipelines are configured.</p>\n");
    for (struct mmsd_pipe *pp = d->pipes; pp; pp = pp->next)
        if (!pp->stop_requested || !mmsd_find_pipe(d, pp->conf.name) ||
            mmsd_find_pipe(d, pp->conf.name) == pp)
            card(res, pp);
    return rc ? rc : mmsd_http_res_append(res, page_tail, sizeof(page_tail) - 1);
}
