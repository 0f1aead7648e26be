/* The status page: every pipeline's live preview, its numbers, buttons to
 * act on it and a chart of its last minute, for whoever opens
 * http://HOST:PORT/ in a browser. The cards are rendered here so the
 * previews show without scripts; a small script polls the API every second
 * for the numbers and the chart (fps and latency, the last 60 polls), and
 * sends what the buttons ask (PATCH .../NAME {"style":...}, POST
 * .../NAME/recording {"action":...}), showing each answer or error in the
 * card (announced to screen readers: role=status / role=alert).
 *
 * Off loopback the page is opened as /?access_token=TOKEN: the script reads
 * the token from its own address and sends it as a bearer token with each
 * API call (in the query for the preview <img>, where no header can be
 * added). The token is never written into the page. Everything is inline;
 * the Content-Security-Policy allows exactly this page's one script and one
 * style sheet (by hash), requests to this server only, and no framing (the
 * page has buttons: no other site may overlay it).
 *
 * Each preview sits at a fixed place (first one at x=24, y=72, 640x360 CSS
 * pixels) so a test can find it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/base64.h>
#include <libavutil/mem.h>
#include <libavutil/sha.h>

#include "core/redact.h"
#include "daemon/internal.h"
#include "pipeline/options.h"

static const char page_style[] =
    "body{margin:0;font:14px/1.4 system-ui,sans-serif;background:#eef0f3;color:#1b1f24}\n"
    "header{height:48px;box-sizing:border-box;padding:12px 16px;background:#1b1f24;color:#fff;display:flex;justify-content:space-between}\n"
    "header b{font-weight:600}\n"
    "#conn{color:#ffb4a9}\n"
    ".cards{display:flex;flex-wrap:wrap;gap:16px;padding:16px}\n"
    ".card{background:#fff;padding:8px;border-radius:6px;width:640px}\n"
    ".card img{display:block;width:640px;height:360px;object-fit:contain;background:#000}\n"
    ".card h2{font-size:16px;margin:8px 0 4px}\n"
    ".state{font-weight:600}.ok{color:#137333}.bad{color:#b3261e}\n"
    "table{border-collapse:collapse}td{padding:1px 12px 1px 0}\n"
    ".reasons,.err{color:#b3261e;margin:4px 0}\n"
    ".msg{color:#137333;margin:4px 0}\n"
    ".msg:empty,.err:empty,.reasons:empty{display:none}\n"
    ".controls{display:flex;flex-wrap:wrap;align-items:center;gap:6px 16px;margin:6px 0}\n"
    ".styles{display:flex;align-items:center;gap:4px}\n"
    "button{font:inherit;padding:4px 12px;border:1px solid #6b7280;border-radius:4px;background:#fff;color:#1b1f24;cursor:pointer}\n"
    "button:hover{background:#e8eaed}\n"
    "button[aria-pressed=true]{background:#1b1f24;border-color:#1b1f24;color:#fff}\n"
    "button.recbtn.on{border-color:#b3261e;color:#b3261e}\n"
    "button:disabled{color:#6b7280;border-style:dashed;cursor:default;background:#fff}\n"
    "button:focus-visible{outline:3px solid #1a73e8;outline-offset:2px}\n"
    ".dot{color:#b3261e;font-weight:600}\n"
    "canvas{display:block;width:640px;height:130px;margin-top:6px}\n"
    ".legend{margin:2px 0 0;color:#3c4043}\n"
    ".key{display:inline-block;width:14px;height:3px;vertical-align:middle;margin-right:4px}\n"
    ".kf{background:#1a73e8}.kl{background:#e8710a}\n";

static const char page_script[] =
    "'use strict';\n"
    "// The token comes only from this page's own address (/?access_token=TOKEN):\n"
    "// the daemon never writes it into the page.\n"
    "const tok=new URLSearchParams(location.search).get('access_token');\n"
    "if(tok) for(const i of document.querySelectorAll('.card img')) i.src+='?access_token='+encodeURIComponent(tok);\n"
    "const API='/api/v1/pipelines', N=60, FPS='#1a73e8', LAT='#e8710a';\n"
    "const conn=document.getElementById('conn'), cards=new Map();\n"
    "for(const el of document.querySelectorAll('.card')){\n"
    " const st={name:el.dataset.name,el,fps:[],lat:[],busy:false,actAt:0,state:el.dataset.state,rec:null};\n"
    " cards.set(st.name,st);\n"
    " for(const b of el.querySelectorAll('button.style')) b.addEventListener('click',()=>setStyle(st,b.dataset.style));\n"
    " el.querySelector('button.recbtn').addEventListener('click',()=>toggleRec(st));\n"
    "}\n"
    "function fmt(v){return v===undefined||v===null?'-':v;}\n"
    "function q(st,sel){return st.el.querySelector(sel);}\n"
    "function say(st,text){q(st,'.msg').textContent=text;}\n"
    "function fail(st,text){q(st,'.msg').textContent='';q(st,'.err').textContent=text;}\n"
    "// One API call; throws an Error whose message says what went wrong.\n"
    "async function call(method,path,body){\n"
    " const o={method,headers:{},cache:'no-store'};\n"
    " if(tok) o.headers.Authorization='Bearer '+tok;\n"
    " if(body!==undefined){o.headers['Content-Type']='application/json';o.body=JSON.stringify(body);}\n"
    " let r,j=null;\n"
    " try{r=await fetch(path,o);}catch(e){throw new Error('mmsd did not answer');}\n"
    " try{j=await r.json();}catch(e){}\n"
    " if(!r.ok){\n"
    "  let m='HTTP '+r.status+(j&&j.error?' '+j.error:'');\n"
    "  if(r.status===401) m+=tok?' (the token was refused: open the page again with the current token)'\n"
    "                           :' (open the page as /?access_token=TOKEN)';\n"
    "  throw new Error(m);\n"
    " }\n"
    " return j;\n"
    "}\n"
    "function showStyle(st,s){\n"
    " for(const b of st.el.querySelectorAll('button.style')) b.setAttribute('aria-pressed',String(b.dataset.style===s));\n"
    "}\n"
    "function showRec(st,rec){\n"
    " const b=q(st,'button.recbtn'), on=!!(rec.recording||rec.retrying);\n"
    " st.rec=rec;\n"
    " b.disabled=!rec.enabled;\n"
    " b.textContent=!rec.enabled?'Recording not configured':on?'Stop recording':'Start recording';\n"
    " b.setAttribute('aria-label',b.textContent+' ('+st.name+')');\n"
    " b.classList.toggle('on',on);\n"
    " q(st,'.dot').hidden=!rec.recording;\n"
    " q(st,'.rec').textContent=!rec.enabled?'not configured':rec.error?'failed: '+rec.error:\n"
    "  (rec.recording?'on'+(rec.file?' \\u2014 '+rec.file:''):'off')+\n"
    "  (rec.state_error?' \\u2014 warning: '+rec.state_error:'');\n"
    "}\n"
    "async function act(st,what,method,path,body,done){\n"
    " if(st.busy) return;\n"
    " st.busy=true;\n"
    " try{\n"
    "  const j=await call(method,path,body);\n"
    "  st.actAt=performance.now();\n"
    "  done(j);\n"
    "  q(st,'.err').textContent='';\n"
    " }catch(e){fail(st,st.name+': '+what+' failed: '+e.message);}\n"
    " finally{st.busy=false;}\n"
    "}\n"
    "function setStyle(st,s){\n"
    " act(st,'style '+s,'PATCH',API+'/'+st.name,{style:s},j=>{\n"
    "  showStyle(st,j.settings.style);say(st,st.name+': style '+j.settings.style);});\n"
    "}\n"
    "function toggleRec(st){\n"
    " const start=!(st.rec&&(st.rec.recording||st.rec.retrying));\n"
    " act(st,start?'starting the recording':'stopping the recording','POST',API+'/'+st.name+'/recording',\n"
    "  {action:start?'start':'stop'},j=>{showRec(st,j);say(st,st.name+': recording '+(start?'started':'stopped')+\n"
    "   (j.saved===false&&j.save_error?' \\u2014 not saved: '+j.save_error:''));});\n"
    "}\n"
    "function push(a,v){a.push(typeof v==='number'?v:null);if(a.length>N)a.shift();}\n"
    "// A top for the axis that splits into 4 round steps.\n"
    "function ceil(m){\n"
    " for(const s of [4,8,12,20,40,60,80,100,200,400,600,1000,2000,4000,10000])if(m<=s)return s;\n"
    " return Math.ceil(m/4000)*4000;\n"
    "}\n"
    "function draw(st){\n"
    " const cv=q(st,'canvas'), d=window.devicePixelRatio||1, W=cv.clientWidth, H=cv.clientHeight;\n"
    " if(cv.width!==Math.round(W*d)){cv.width=Math.round(W*d);cv.height=Math.round(H*d);}\n"
    " const g=cv.getContext('2d'), L=40, R=44, T=14, B=18, w=W-L-R, h=H-T-B;\n"
    " g.setTransform(d,0,0,d,0,0);g.clearRect(0,0,W,H);\n"
    " const top=(a,m)=>{for(const v of a)if(v!==null&&v>m)m=v;return ceil(m);};\n"
    " const fm=top(st.fps,4), lm=top(st.lat,8);\n"
    " g.font='11px system-ui,sans-serif';g.lineWidth=1;\n"
    " for(let i=0;i<=4;i++){\n"
    "  const y=Math.round(T+h*i/4)+.5;\n"
    "  g.strokeStyle='#dadce0';g.beginPath();g.moveTo(L,y);g.lineTo(L+w,y);g.stroke();\n"
    "  g.fillStyle=FPS;g.textAlign='right';g.fillText(+(fm*(1-i/4)).toFixed(1),L-5,y+4);\n"
    "  g.fillStyle=LAT;g.textAlign='left';g.fillText(+(lm*(1-i/4)).toFixed(1),L+w+5,y+4);\n"
    " }\n"
    " g.fillStyle=FPS;g.textAlign='left';g.fillText('fps',2,10);\n"
    " g.fillStyle=LAT;g.textAlign='right';g.fillText('ms',W-2,10);\n"
    " g.fillStyle='#5f6368';g.textAlign='left';g.fillText('60 s ago',L,H-4);\n"
    " g.textAlign='right';g.fillText('now',L+w,H-4);\n"
    " const line=(a,m,c)=>{\n"
    "  g.strokeStyle=g.fillStyle=c;g.lineWidth=2;g.beginPath();let pen=false,x=0,y=0;\n"
    "  a.forEach((v,i)=>{\n"
    "   if(v===null){pen=false;return;}\n"
    "   x=L+w*(i+N-a.length)/(N-1);y=T+h*(1-Math.min(v,m)/m);\n"
    "   if(pen)g.lineTo(x,y);else g.moveTo(x,y);pen=true;\n"
    "  });\n"
    "  g.stroke();if(pen){g.beginPath();g.arc(x,y,2.5,0,7);g.fill();}\n"
    " };\n"
    " line(st.lat,lm,LAT);line(st.fps,fm,FPS);\n"
    " cv.dataset.samples=st.fps.length;\n"
    "}\n"
    "function setConn(text){\n"
    " if(text) conn.textContent=text;\n"
    " else if(conn.textContent) conn.textContent='';\n"
    "}\n"
    "async function refresh(){\n"
    " const t0=performance.now();\n"
    " try{\n"
    "  const j=await call('GET',API);\n"
    "  setConn('');\n"
    "  for(const p of j.pipelines){\n"
    "   const st=cards.get(p.name);if(!st) continue;\n"
    "   const s=q(st,'.state');s.textContent=p.state;s.className='state '+(p.healthy?'ok':'bad');\n"
    "   if(p.state!==st.state) say(st,p.name+': '+p.state);\n"
    "   st.state=p.state;\n"
    "   q(st,'.reasons').textContent=p.reasons.join('; ');\n"
    "   const t=p.stats||{}, l=p.latency_ms||{}, inf=l.infer||{}, tot=l.total||{};\n"
    "   q(st,'.fps').textContent=fmt(t.fps);\n"
    "   q(st,'.frames').textContent=fmt(t.decoded)+' / '+fmt(t.inferred)+' / '+fmt(t.dropped)+' / '+fmt(t.skipped)+' / '+fmt(t.written);\n"
    "   q(st,'.infer').textContent=inf.p50===undefined?'-':inf.p50+' / '+inf.p95;\n"
    "   if(t0>=st.actAt){showStyle(st,(p.settings||{}).style);showRec(st,p.recording||{});}\n"
    "   push(st.fps,t.fps);push(st.lat,tot.p50);\n"
    "   q(st,'.fpsnow').textContent=fmt(t.fps);q(st,'.latnow').textContent=fmt(tot.p50);\n"
    "   draw(st);\n"
    "  }\n"
    " }catch(e){setConn('Not updated: '+e.message);}\n"
    " setTimeout(refresh,1000);\n"
    "}\n"
    "refresh();\n";

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width\">\n"
    "<title>mmsd</title>\n<style>";

static const char page_top[] =
    "</style></head><body>\n"
    "<header><b>mmsd — surgical tool segmentation</b>"
    "<span id=\"conn\" role=\"status\"></span></header>\n"
    "<noscript><p>The numbers, buttons and charts need JavaScript.</p></noscript>\n"
    "<main class=\"cards\">\n";

/* "'sha256-BASE64'" of an inline script or style, as CSP level 2 wants. */
static int csp_hash(const char *text, size_t len, char *out, size_t n)
{
    uint8_t digest[32];
    char b64[AV_BASE64_SIZE(sizeof(digest))];
    struct AVSHA *sha = av_sha_alloc();
    if (!sha)
        return -1;
    av_sha_init(sha, 256);
    av_sha_update(sha, (const uint8_t *)text, len);
    av_sha_final(sha, digest);
    av_free(sha);
    if (!av_base64_encode(b64, sizeof(b64), digest, sizeof(digest)))
        return -1;
    return snprintf(out, n, "'sha256-%s'", b64) < (int)n ? 0 : -1;
}

static int security_headers(struct mmsd_http_response *res)
{
    char script[64], style[64], csp[512];
    if (csp_hash(page_script, sizeof(page_script) - 1, script, sizeof(script)) ||
        csp_hash(page_style, sizeof(page_style) - 1, style, sizeof(style)))
        return -1;
    snprintf(csp, sizeof(csp),
             "default-src 'none'; script-src %s; style-src %s; img-src 'self'; "
             "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
             script, style);
    mmsd_http_res_header(res, "Content-Security-Policy", csp);
    mmsd_http_res_header(res, "X-Frame-Options", "DENY");
    mmsd_http_res_header(res, "X-Content-Type-Options", "nosniff");
    /* The address may hold the token. */
    mmsd_http_res_header(res, "Referrer-Policy", "no-referrer");
    return 0;
}

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

/* The style buttons, one per value of the style option, the current one
 * pressed. */
static void style_buttons(struct mmsd_http_response *res, const struct mmsd_pipe *pp)
{
    const struct mms_option *opt = mms_option_find("style");
    char cur[32] = "";
    if (!opt)
        return;
    mms_option_format(&pp->rt, opt, cur, sizeof(cur));
    mmsd_http_res_printf(res,
                         "<div class=\"styles\" role=\"group\" aria-label=\"Overlay style (%s)\">"
                         "<span aria-hidden=\"true\">Style</span>\n",
                         pp->conf.name);
    for (const char *const *s = opt->names; *s; s++)
        mmsd_http_res_printf(res,
                             "<button type=\"button\" class=\"style\" data-style=\"%s\" "
                             "aria-pressed=\"%s\">%s</button>\n",
                             *s, strcmp(*s, cur) ? "false" : "true", *s);
    mmsd_http_res_printf(res, "</div>\n");
}

static void card(struct mmsd *d, struct mmsd_http_response *res, struct mmsd_pipe *pp)
{
    const char *n = pp->conf.name; /* [A-Za-z0-9._-]: safe in HTML and URLs */
    const char *state = mmsd_pipe_state_name(pp->state);
    char input[1024];
    struct mmsd_pipe_view v;
    mmsd_pipe_view(d, pp, 0, &v);
    int on = v.rec.recording || v.rec.retrying;
    const char *rec = !pp->conf.o.record_dir ? "Recording not configured"
                      : on                   ? "Stop recording"
                                             : "Start recording";
    mms_redact_url(pp->conf.o.input ? pp->conf.o.input : "", input, sizeof(input));
    mmsd_http_res_printf(res,
                         "<section class=\"card\" id=\"card-%s\" data-name=\"%s\" "
                         "data-state=\"%s\" aria-labelledby=\"title-%s\">\n"
                         "<img id=\"preview-%s\" src=\"/preview/%s.mjpeg\" alt=\"%s preview\">\n"
                         "<h2 id=\"title-%s\">%s <span class=\"state\">%s</span> "
                         "<span class=\"dot\"%s>&#9679; REC</span></h2>\n"
                         "<div class=\"reasons\"></div>\n<div class=\"controls\">\n",
                         n, n, state, n, n, n, n, n, n, state, v.rec.recording ? "" : " hidden");
    style_buttons(res, pp);
    mmsd_http_res_printf(res,
                         "<button type=\"button\" class=\"recbtn%s\" aria-label=\"%s (%s)\"%s>"
                         "%s</button>\n</div>\n"
                         "<p class=\"msg\" role=\"status\"></p>\n"
                         "<p class=\"err\" role=\"alert\"></p>\n"
                         "<table>\n<tr><td>input</td><td>",
                         on ? " on" : "", rec, n, pp->conf.o.record_dir ? "" : " disabled", rec);
    escaped(res, input);
    mmsd_http_res_printf(res, "</td></tr>\n<tr><td>model</td><td>");
    escaped(res, pp->model);
    mmsd_http_res_printf(
        res,
        "</td></tr>\n"
        "<tr><td>fps</td><td class=\"fps\">-</td></tr>\n"
        "<tr><td>frames decoded / inferred / dropped / skipped / written</td>"
        "<td class=\"frames\">-</td></tr>\n"
        "<tr><td>inference ms p50 / p95</td><td class=\"infer\">-</td></tr>\n"
        "<tr><td>recording</td><td class=\"rec\">-</td></tr>\n"
        "</table>\n"
        "<canvas class=\"chart\" width=\"640\" height=\"130\" role=\"img\" aria-label=\"%s, "
        "last 60 s: frames per second (blue, left axis) and latency p50 from decode to output "
        "in ms (orange, right axis)\"></canvas>\n"
        "<p class=\"legend\"><span class=\"key kf\"></span>fps <b class=\"fpsnow\">-</b> "
        "&nbsp; <span class=\"key kl\"></span>latency p50, decode to output: "
        "<b class=\"latnow\">-</b> ms</p>\n"
        "</section>\n",
        n);
}

int mmsd_page_write(struct mmsd *d, struct mmsd_http_response *res)
{
    mmsd_http_res_content_type(res, "text/html; charset=utf-8");
    mmsd_http_res_header(res, "Cache-Control", "no-store");
    if (security_headers(res))
        return -ENOMEM;
    mmsd_http_res_append(res, page_head, sizeof(page_head) - 1);
    mmsd_http_res_append(res, page_style, sizeof(page_style) - 1);
    int rc = mmsd_http_res_append(res, page_top, sizeof(page_top) - 1);
    if (!d->pipes)
        mmsd_http_res_printf(res, "<p>No pipelines are configured.</p>\n");
    for (struct mmsd_pipe *pp = d->pipes; pp; pp = pp->next)
        if (!pp->stop_requested || !mmsd_find_pipe(d, pp->conf.name) ||
            mmsd_find_pipe(d, pp->conf.name) == pp)
            card(d, res, pp);
    mmsd_http_res_printf(res, "</main>\n<script>");
    mmsd_http_res_append(res, page_script, sizeof(page_script) - 1);
    return rc ? rc : mmsd_http_res_printf(res, "</script>\n</body></html>\n");
}
