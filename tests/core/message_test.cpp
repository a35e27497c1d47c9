#define BOOST_TEST_MODULE message
#include <boost/test/unit_test.hpp>

// message_test - core/message.cpp: the streaming rewriter (byte-exact output
// for CRLF and LF messages at chunk sizes 1/7/4096/65536, facts, hop counting,
// oversized fields, bounded memory on 50 MB), the X-Popgate-Id MAC (known
// answer, round trips, forgeries) and the Received: trace field. Table-driven.
#include "core/message.h"

#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace popgate;

namespace
{

const std::string kPrepend = "Received: by test (popgate)\r\n\tfor <x@y>;\r\n"
                             "\tSat, 28 Nov 2026 18:00:00 +0000\r\nX-Popgate-Id: v1 test\r\n";
const std::vector<std::size_t> kChunks = {1, 7, 4096, 65536};

/// lf - the text with every CRLF as a bare LF.
std::string lf(const std::string& text)
{
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i)
        if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n'))
            out += text[i];
    return out;
}

struct Result {
    std::string output;
    MessageFacts facts;
};

/// rewrite - input through a MessageRewriter in chunks (1: via put(), i.e. overflow()).
Result rewrite(const std::string& input, std::size_t chunk, const std::string& prepend = kPrepend)
{
    std::ostringstream sink;
    MessageRewriter rewriter(sink, prepend);
    std::ostream out(&rewriter);
    for (std::size_t i = 0; i < input.size(); i += chunk) {
        if (chunk == 1)
            out.put(input[i]);
        else
            out.write(input.data() + i,
                      static_cast<std::streamsize>(std::min(chunk, input.size() - i)));
    }
    BOOST_TEST(out.good());
    Result r;
    r.facts = rewriter.finish();
    r.output = sink.str();
    return r;
}

struct Expected {
    std::string messageId, from, returnPath, subject;
    bool nullReturnPath = false;
    int hops = 0;
    bool hadPopgate = false;
    bool complete = true;
};

struct Case {
    const char* label;
    std::string input;  ///< CRLF form; the LF form is derived
    std::string output; ///< after kPrepend
    Expected facts;
};

const std::string kReceived1 =
    receivedHeader("pop.example.com", "gw1.example", "helpdesk", "1", "a@example.com", 0);
const std::string kReceived2 =
    receivedHeader("pop.example.org", std::string(60, 'h') + ".example", "sales", "2", "", 0);

std::vector<Case> rewriteCases()
{
    const std::string body = "Body line 1\r\n..dot stays\r\n\r\nX-Popgate-Id: in body stays\r\n";
    const std::string longLine(10000, 'L');
    std::string binary = std::string("nul\0here\r\n", 10) + "8bit \xc3\xa9\xff\x80\r\n" + longLine +
                         "\r\n" + std::string("\0\0\r\n", 4) + "no end";
    std::vector<Case> cases;

    cases.push_back(
        {"plain message, facts extracted",
         "From: Alice <alice@example.com>\r\nTo: b@example.com\r\n"
         "Subject: hello\r\nMessage-ID: <1@example.com>\r\n"
         "Return-Path: <bounce@example.com>\r\n\r\n" +
             body,
         "From: Alice <alice@example.com>\r\nTo: b@example.com\r\n"
         "Subject: hello\r\nMessage-ID: <1@example.com>\r\n"
         "Return-Path: <bounce@example.com>\r\n\r\n" +
             body,
         {"<1@example.com>", "Alice <alice@example.com>", "bounce@example.com", "hello"}});

    Expected dropped;
    dropped.subject = "s";
    dropped.hadPopgate = true;
    cases.push_back({"folded X-Popgate-Id and X-POPGATE-Account dropped",
                     "X-Popgate-Id: v1 a=forged\r\n u=AAAA\r\n\tm=0000\r\nSubject: s\r\n"
                     "X-POPGATE-Account: other\r\n  continued\r\n\tagain\r\n"
                     "x-popgate-: empty suffix\r\nX-Popgate: not our prefix\r\n"
                     "X-Popgate-Id : obs space before colon\r\n\r\n" +
                         body,
                     "Subject: s\r\nX-Popgate: not our prefix\r\n\r\n" + body, dropped});

    Expected folded;
    folded.subject = "hello  world\tagain";
    folded.messageId = "<id@x>";
    folded.from = "a@x";
    cases.push_back({"folded Subject unfolded, first occurrence wins",
                     "Subject: hello\r\n  world\r\n\tagain  \r\nSubject: second\r\n"
                     "Message-ID:\r\n <id@x>\r\nMessage-Id: <other@x>\r\nFROM: a@x\r\n"
                     "From: b@x\r\n\r\n",
                     "Subject: hello\r\n  world\r\n\tagain  \r\nSubject: second\r\n"
                     "Message-ID:\r\n <id@x>\r\nMessage-Id: <other@x>\r\nFROM: a@x\r\n"
                     "From: b@x\r\n\r\n",
                     folded});

    Expected nullPath;
    nullPath.nullReturnPath = true;
    cases.push_back({"Return-Path: <> is the null path", "Return-Path: <>\r\n\r\nx",
                     "Return-Path: <>\r\n\r\nx", nullPath});
    Expected spacedPath;
    spacedPath.returnPath = "b@x";
    cases.push_back({"Return-Path first wins, blanks inside brackets",
                     "Return-Path: < b@x >\r\nReturn-Path: <>\r\n\r\n",
                     "Return-Path: < b@x >\r\nReturn-Path: <>\r\n\r\n", spacedPath});

    Expected hops;
    hops.hops = 2;
    const std::string traced = kReceived1 + kReceived2 +
                               "Received: from mx by relay.example (Postfix) with ESMTP;\r\n"
                               "\tThu, 1 Jan 1970 00:00:00 +0000\r\n"
                               "Received: from (popgate) host by mx (Exim);\r\n"
                               "\tThu, 1 Jan 1970 00:00:00 +0000\r\n\r\nbody\r\n";
    cases.push_back({"two popgate Received lines count 2 hops", traced, traced, hops});

    Expected noHeader;
    noHeader.complete = false;
    cases.push_back({"first line without colon: no header section",
                     "hello world\r\nFrom: a@x\r\nX-Popgate-Id: kept\r\n\r\nbody",
                     "hello world\r\nFrom: a@x\r\nX-Popgate-Id: kept\r\n\r\nbody", noHeader});
    cases.push_back({"first line a continuation: no header section",
                     " Subject: x\r\nX-Popgate-Id: kept\r\n",
                     " Subject: x\r\nX-Popgate-Id: kept\r\n", noHeader});
    cases.push_back({"first line with a blank in the name: no header section",
                     "From a@x Sat Nov 28\r\nSubject: x\r\n\r\n",
                     "From a@x Sat Nov 28\r\nSubject: x\r\n\r\n", noHeader});
    Expected emptyHeader;
    cases.push_back({"first line blank: empty header section, complete", "\r\nX-Popgate-Id: k\r\n",
                     "\r\nX-Popgate-Id: k\r\n", emptyHeader});
    cases.push_back({"empty message: prepend only", "", "", noHeader});

    Expected noEnd;
    noEnd.complete = false;
    noEnd.from = "a@x";
    noEnd.subject = "last, no line end";
    noEnd.hadPopgate = true;
    cases.push_back({"header never ends, last line without line end",
                     "From: a@x\r\nX-Popgate-Id: v1\r\n x\r\nSubject: last, no line end",
                     "From: a@x\r\nSubject: last, no line end", noEnd});
    noEnd.subject = "";
    noEnd.hadPopgate = false;
    cases.push_back({"header never ends, ends with a folded field",
                     "From: a@x\r\nX-Other: 1\r\n 2\r\n", "From: a@x\r\nX-Other: 1\r\n 2\r\n",
                     noEnd});
    Expected stray;
    stray.complete = false;
    stray.from = "a@x";
    cases.push_back({"non-field line ends the header section early",
                     "From: a@x\r\nnot a header\r\nX-Popgate-Id: kept\r\nSubject: kept\r\n",
                     "From: a@x\r\nnot a header\r\nX-Popgate-Id: kept\r\nSubject: kept\r\n",
                     stray});

    Expected eightBit;
    eightBit.subject = "caf\xc3\xa9";
    cases.push_back({"NUL, 8-bit and 10 000-character lines pass unharmed",
                     "Subject: caf\xc3\xa9\r\nX-Long: " + longLine + "\r\n\r\n" + binary,
                     "Subject: caf\xc3\xa9\r\nX-Long: " + longLine + "\r\n\r\n" + binary,
                     eightBit});
    Expected lone;
    lone.complete = false;
    lone.subject = "x";
    cases.push_back({"bare CR line is not blank", "Subject: x\r\n\r \r\nbody",
                     "Subject: x\r\n\r \r\nbody", lone});
    return cases;
}

void check(const Case& c, const std::string& form, const std::string& input,
           const std::string& output, std::size_t chunk)
{
    BOOST_TEST_CONTEXT(c.label << " [" << form << ", chunk " << chunk << "]")
    {
        const Result r = rewrite(input, chunk);
        BOOST_TEST((r.output == kPrepend + output));
        const MessageFacts& f = r.facts;
        BOOST_TEST(f.messageId == c.facts.messageId);
        BOOST_TEST(f.from == c.facts.from);
        BOOST_TEST(f.returnPath == c.facts.returnPath);
        BOOST_TEST(f.nullReturnPath == c.facts.nullReturnPath);
        BOOST_TEST(f.subject == c.facts.subject);
        BOOST_TEST(f.popgateHops == c.facts.hops);
        BOOST_TEST(f.hadPopgateHeaders == c.facts.hadPopgate);
        BOOST_TEST(f.headerComplete == c.facts.complete);
        BOOST_TEST(f.inputOctets == static_cast<std::int64_t>(input.size()));
        BOOST_TEST(f.outputOctets == static_cast<std::int64_t>(r.output.size()));
    }
}

/// CountingBuf - a sink that keeps nothing but the byte count.
class CountingBuf : public std::streambuf
{
public:
    std::int64_t count = 0;

protected:
    int_type overflow(int_type ch) override
    {
        if (!traits_type::eq_int_type(ch, traits_type::eof()))
            ++count;
        return traits_type::not_eof(ch);
    }
    std::streamsize xsputn(const char*, std::streamsize n) override
    {
        count += n;
        return n;
    }
};

/// resetPeakRss - VmHWM back to the current RSS (Linux >= 4.0), so that what
/// earlier cases allocated cannot hide growth.
void resetPeakRss()
{
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
    clear.close();
    BOOST_REQUIRE_MESSAGE(clear, "cannot reset VmHWM through /proc/self/clear_refs");
}

/// peakRssKiB - VmHWM from /proc/self/status.
long peakRssKiB()
{
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmHWM:", 0) == 0)
            return std::stol(line.substr(6));
    BOOST_FAIL("no VmHWM in /proc/self/status");
    return 0;
}

} // namespace

BOOST_AUTO_TEST_SUITE(rewriter)

BOOST_AUTO_TEST_CASE(table_crlf_and_lf_at_every_chunk_size)
{
    for (const Case& c : rewriteCases())
        for (std::size_t chunk : kChunks) {
            check(c, "CRLF", c.input, c.output, chunk);
            check(c, "LF", lf(c.input), lf(c.output), chunk);
        }
}

BOOST_AUTO_TEST_CASE(oversized_fields_around_the_cap)
{
    const std::size_t cap = MessageRewriter::kMaxField;
    struct Row {
        const char* label;
        std::string field; ///< one whole field, CRLF-terminated
        bool dropped;
    };
    auto folded = [](const std::string& name, std::size_t total) {
        std::string f = name + ": start\r\n";
        while (f.size() < total)
            f += "\t" + std::string(997, 'v') + "\r\n";
        return f;
    };
    std::vector<Row> rows;
    for (std::size_t size : {cap - 300, cap - 2, cap - 1, cap, cap + 1, cap + 2, 3 * cap}) {
        const std::string single = std::string("X-Popgate-Big: ") + std::string(size, 'p') + "\r\n";
        rows.push_back({"single-line X-Popgate field", single, true});
        rows.push_back(
            {"single-line other field", "X-Big: " + std::string(size, 'o') + "\r\n", false});
        rows.push_back({"folded X-Popgate field", folded("X-Popgate-Fold", size), true});
        rows.push_back({"folded other field", folded("X-Fold", size), false});
    }
    for (const Row& row : rows)
        for (std::size_t chunk : kChunks) {
            BOOST_TEST_CONTEXT(row.label << " of " << row.field.size() << " bytes, chunk " << chunk)
            {
                // The field before and after must survive whatever the cap does.
                const std::string before = "From: a@x\r\n";
                const std::string after = "Subject: after\r\n\r\nbody\r\n";
                const std::string input = before + row.field + after;
                const Result r = rewrite(input, chunk);
                const std::string expected =
                    kPrepend + before + (row.dropped ? "" : row.field) + after;
                BOOST_TEST((r.output == expected));
                BOOST_TEST(r.facts.hadPopgateHeaders == row.dropped);
                BOOST_TEST(r.facts.subject == "after");
                BOOST_TEST(r.facts.from == "a@x");
                BOOST_TEST(r.facts.headerComplete);
            }
        }
}

/// reference - what the rewriter must output after prepend, computed on the
/// whole message at once (no streaming, no cap) by the rules in message.h.
std::string reference(const std::string& in)
{
    std::string out, field;
    bool body = false;
    auto flush = [&] {
        std::string name = field.substr(0, field.find_first_of(" \t:"));
        for (char& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (name.rfind("x-popgate-", 0) != 0)
            out += field;
        field.clear();
    };
    auto isField = [](const std::string& line) {
        std::size_t i = 0;
        while (i < line.size() && line[i] > 32 && line[i] < 127 && line[i] != ':')
            ++i;
        std::size_t j = i;
        while (j < line.size() && (line[j] == ' ' || line[j] == '\t'))
            ++j;
        return i > 0 && j < line.size() && line[j] == ':';
    };
    for (std::size_t start = 0; start < in.size();) {
        const std::size_t end = std::min(in.find('\n', start), in.size() - 1) + 1;
        const std::string line = in.substr(start, end - start);
        start = end;
        if (body) {
            out += line;
        } else if (line == "\r\n" || line == "\n") {
            flush();
            out += line;
            body = true;
        } else if ((line[0] == ' ' || line[0] == '\t') && !field.empty()) {
            field += line;
        } else {
            flush();
            if (isField(line))
                field = line;
            else
                out += line, body = true;
        }
    }
    flush();
    return out;
}

BOOST_AUTO_TEST_CASE(random_messages_match_the_reference)
{
    std::mt19937 rng(20261128); // fixed seed: failures reproduce
    auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    const std::vector<std::string> names = {
        "Subject", "X-Popgate-Id", "x-popgate-account", "X-Other", "Received", "X-Popgate", "From"};
    const std::size_t cap = MessageRewriter::kMaxField;
    const std::vector<std::size_t> sizes = {0, 1, 50, 1000, cap - 40, cap, cap + 30, 3 * cap};
    for (int round = 0; round < 300; ++round) {
        const std::string eol = pick(2) ? "\r\n" : "\n";
        std::string msg;
        const std::size_t fields = pick(8);
        for (std::size_t f = 0; f < fields; ++f) {
            msg += names[pick(names.size())] + (pick(5) ? ": " : " : ");
            msg += std::string(sizes[pick(sizes.size())], 'v') + eol;
            for (std::size_t c = pick(4); c > 0; --c)
                msg += (pick(2) ? " " : "\t") + std::string(sizes[pick(5)], 'c') + eol;
        }
        switch (pick(4)) {
        case 0: // no end of header, maybe a partial last line
            msg += pick(2) ? "X-Popgate-Tail: t" : "";
            break;
        case 1:
            msg += "not a field" + eol + "X-Popgate-Id: body" + eol;
            break;
        default:
            msg += eol + "X-Popgate-Id: body" + eol;
            for (std::size_t b = pick(2000); b > 0; --b)
                msg += static_cast<char>(rng());
        }
        std::ostringstream sink;
        MessageRewriter rewriter(sink, "P" + eol);
        std::ostream out(&rewriter);
        for (std::size_t i = 0; i < msg.size();) {
            const std::size_t n =
                std::min<std::size_t>(msg.size() - i, 1 + pick(pick(2) ? 9 : 70000));
            out.write(msg.data() + i, static_cast<std::streamsize>(n));
            i += n;
        }
        const MessageFacts& facts = rewriter.finish();
        BOOST_TEST_CONTEXT("round " << round << ", " << msg.size() << " bytes")
        {
            BOOST_TEST((sink.str() == "P" + eol + reference(msg)));
            BOOST_TEST(facts.inputOctets == static_cast<std::int64_t>(msg.size()));
            BOOST_TEST(facts.outputOctets == static_cast<std::int64_t>(sink.str().size()));
        }
    }
}

BOOST_AUTO_TEST_CASE(oversized_first_line_without_colon_is_body)
{
    const std::string input = std::string(100000, 'z') + "\r\nX-Popgate-Id: kept\r\n";
    for (std::size_t chunk : kChunks) {
        const Result r = rewrite(input, chunk);
        BOOST_TEST((r.output == kPrepend + input));
        BOOST_TEST(!r.facts.headerComplete);
    }
}

BOOST_AUTO_TEST_CASE(finish_is_idempotent_and_later_writes_fail)
{
    std::ostringstream sink;
    MessageRewriter rewriter(sink, "P\r\n");
    std::ostream out(&rewriter);
    out << "Subject: x";
    const MessageFacts first = rewriter.finish();
    const MessageFacts& second = rewriter.finish();
    BOOST_TEST(sink.str() == "P\r\nSubject: x");
    BOOST_TEST(first.outputOctets == second.outputOctets);
    out << "more";
    BOOST_TEST(out.bad());
    BOOST_TEST(sink.str() == "P\r\nSubject: x");
}

// The measure itself: 16 MB touched must show as more than the 4 MB bound
// (less than 16: freed heap that is still resident may be reused).
BOOST_AUTO_TEST_CASE(peak_rss_measure_sees_16_MB)
{
    resetPeakRss();
    const long before = peakRssKiB();
    {
        std::vector<char> touched(16 * 1024 * 1024, 'x');
        BOOST_TEST(touched[4096] == 'x');
    }
    BOOST_TEST(peakRssKiB() - before > 4 * 1024);
}

BOOST_AUTO_TEST_CASE(memory_bounded_for_50_MB_body_and_huge_header_field)
{
    struct Row {
        const char* label;
        std::function<const std::string&(std::size_t)> chunk; ///< the i-th block (no copies:
                                                              ///< ASan's quarantine would grow)
        std::int64_t expectedDrop;                            ///< bytes the rewriter drops
    };
    const std::size_t block = 65536;
    const std::size_t blocks = 50 * 1024 * 1024 / block;
    const std::string header = "From: a@x\r\nSubject: big\r\n\r\n";
    std::string bodyLine(block, 'b');
    for (std::size_t i = 99; i < block; i += 100)
        bodyLine[i] = '\n';
    std::string junk(block, 'j');
    for (std::size_t i = 0; i < block; i += 1000)
        junk.replace(i, 3, "\r\n\t");
    const std::string junkStart = "X-Popgate-Junk: x"; // folded on, 50 MB long
    const std::string junkEnd = "\r\n" + header;
    const std::vector<Row> rows = {
        {"50 MB body",
         [&](std::size_t i) -> const std::string& { return i == 0 ? header : bodyLine; }, 0},
        {"50 MB folded X-Popgate field",
         [&](std::size_t i) -> const std::string& {
             return i == 0 ? junkStart : i + 1 == blocks ? junkEnd : junk;
         },
         static_cast<std::int64_t>(junkStart.size() + (blocks - 2) * block + 2)},
    };
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            CountingBuf counter;
            std::ostream sink(&counter);
            resetPeakRss();
            const long before = peakRssKiB();
            std::int64_t in = 0;
            MessageFacts facts;
            {
                MessageRewriter rewriter(sink, "P\r\n");
                std::ostream out(&rewriter);
                for (std::size_t i = 0; i < blocks; ++i) {
                    const std::string& piece = row.chunk(i);
                    out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
                    in += static_cast<std::int64_t>(piece.size());
                }
                facts = rewriter.finish();
            }
            const long grown = peakRssKiB() - before;
            BOOST_TEST_MESSAGE(row.label << ": peak RSS grew " << grown << " KiB");
            BOOST_TEST(grown < 4 * 1024);
            BOOST_TEST(facts.inputOctets == in);
            BOOST_TEST(facts.outputOctets == counter.count);
            BOOST_TEST(counter.count == 3 + in - row.expectedDrop);
            BOOST_TEST(facts.headerComplete);
            BOOST_TEST(facts.subject == "big");
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(popgate_id)

BOOST_AUTO_TEST_CASE(known_answer)
{
    // python3: hmac.new(b"test-key", b"helpdesk\0UID-0001.ab", sha256).hexdigest()[:32]
    BOOST_TEST(popgateIdHeader("test-key", "helpdesk", "UID-0001.ab") ==
               "v1 a=helpdesk u=VUlELTAwMDEuYWI m=d0048ce9b47b19a8a97204316e1e2e30");
    // A key longer than the SHA-256 block is hashed first (RFC 2104).
    BOOST_TEST(popgateIdHeader(std::string(100, 'k'), "a", "x") ==
               "v1 a=a u=eA m=e8bd783a817a524143f5926eb1f8cdf6");
    BOOST_CHECK_THROW(popgateIdHeader("", "a", "x"), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(ids_byte_identical_to_rfc4648_base64url)
{
    // The u= part now comes from Poco::Base64Encoder (URL alphabet, no padding,
    // no line breaks); ids written by earlier versions must verify unchanged.
    // Oracle: python3 base64.urlsafe_b64encode(uidl).rstrip(b"=") and
    // hmac.new(b"k3y", b"acct\0" + uidl, sha256).hexdigest()[:32].
    struct Row {
        std::string uidl, u, m;
    };
    const std::vector<Row> rows = {
        {std::string("", 0), "", "727c1c6d07c62771d4813de2af94d366"},
        {std::string("\x31", 1), "MQ", "a1fc835c4e9043fb6411395052338238"},
        {std::string("\x31\x32", 2), "MTI", "b0c6277e06220c75bf60cea1b45d8a83"},
        {std::string("\x31\x32\x33", 3), "MTIz", "206cbd05e9b0087f13568bff8ca01216"},
        {std::string("\x31\x32\x33\x34", 4), "MTIzNA", "8b77d30e1962943a38deec52e549a5c5"},
        {"UID-0001.ab", "VUlELTAwMDEuYWI", "f2bd5711b03e6a50824617733b3cb2a0"},
        {std::string("\x00\xff\xfe\xfb\x3f\x3e", 6), "AP_--z8-",
         "205960d8f066a2c4ec73542e6e2dc268"},
        {std::string(70, 'a'),
         "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhY"
         "W"
         "FhYQ",
         "d573920037506b7d8dfb15030451a3dc"},
        {std::string("\x00\x07\x0e\x15\x1c\x23\x2a\x31\x38\x3f\x46\x4d\x54\x5b\x62\x69\x70\x77\x7e"
                     "\x85\x8c\x93\x9a\xa1\xa8\xaf\xb6\xbd\xc4\xcb\xd2\xd9\xe0\xe7\xee\xf5\xfc",
                     37),
         "AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK-2vcTL0tng5-71_A", "ee7e75c18cd4368063ce4206d7f6a62a"},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT("uidl of " << r.uidl.size() << " bytes")
        {
            const std::string expected = "v1 a=acct u=" + r.u + " m=" + r.m;
            BOOST_TEST(popgateIdHeader("k3y", "acct", r.uidl) == expected);
            PopgateId id;
            BOOST_TEST(verifyPopgateId("k3y", expected, id));
            BOOST_TEST(id.uidl == r.uidl);
        }
    }
}

BOOST_AUTO_TEST_CASE(round_trip_every_printable_uidl)
{
    std::vector<std::string> uidls;
    std::string all;
    for (char c = 0x21; c <= 0x7e; ++c) {
        uidls.push_back(std::string(1, c));
        uidls.push_back(std::string(2, c));
        uidls.push_back(std::string(3, c) + "x");
        all += c;
    }
    uidls.push_back(all);
    uidls.push_back(all.substr(0, 70));
    uidls.push_back("");
    for (const std::string& uidl : uidls) {
        BOOST_TEST_CONTEXT("uidl '" << uidl << "'")
        {
            const std::string value = popgateIdHeader("secret", "help.desk_1-x", uidl);
            PopgateId id;
            BOOST_TEST(verifyPopgateId("secret", value, id));
            BOOST_TEST(id.account == "help.desk_1-x");
            BOOST_TEST(id.uidl == uidl);
            BOOST_TEST(verifyPopgateId("secret", " " + value + "\r\n", id));
            BOOST_TEST(!verifyPopgateId("secret2", value, id));
        }
    }
}

BOOST_AUTO_TEST_CASE(forgeries_and_garbage_rejected)
{
    const std::string key = "secret";
    const std::string good = popgateIdHeader(key, "helpdesk", "UID-7"); // u=VUlELTc
    auto macOf = [&](const std::string& account, const std::string& uidl) {
        const std::string v = popgateIdHeader(key, account, uidl);
        return v.substr(v.find(" m=") + 3);
    };
    const std::string mac = macOf("helpdesk", "UID-7");
    auto replaced = [&](const std::string& from, const std::string& to) {
        std::string v = good;
        v.replace(v.find(from), from.size(), to);
        return v;
    };
    std::string flipped = good;
    flipped.back() = flipped.back() == '0' ? '1' : '0';
    std::string upper = good;
    for (std::size_t i = upper.find(" m=") + 3; i < upper.size(); ++i)
        upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));

    struct Row {
        const char* label;
        std::string key, value;
    };
    const std::vector<Row> rows = {
        {"altered account", key, replaced("a=helpdesk", "a=helpdesl")},
        {"other account's MAC moved", key, replaced("m=" + mac, "m=" + macOf("sales", "UID-7"))},
        {"other uidl's MAC moved", key, replaced("m=" + mac, "m=" + macOf("helpdesk", "UID-8"))},
        {"altered uidl", key, replaced("u=VUlELTc", "u=VUlELTg")},
        {"non-canonical base64 tail", key, replaced("u=VUlELTc", "u=VUlELTd")},
        {"base64 padding", key, replaced("u=VUlELTc", "u=VUlELTc=")},
        {"standard base64 alphabet", key, replaced("u=VUlELTc", "u=VUlE+Tc")},
        {"altered MAC digit", key, flipped},
        {"uppercase MAC", key, upper},
        {"short MAC", key, good.substr(0, good.size() - 1)},
        {"long MAC", key, good + "0"},
        {"full-length MAC", key, good + std::string(32, '0')},
        {"wrong key", "Secret", good},
        {"empty key", "", good},
        {"extra part", key, good + " x=1"},
        {"missing m", key, good.substr(0, good.find(" m="))},
        {"missing u", key, replaced(" u=VUlELTc", "")},
        {"version 2", key, replaced("v1 ", "v2 ")},
        {"double space", key, replaced(" u=", "  u=")},
        {"parts reordered", key, "v1 u=VUlELTc a=helpdesk m=" + mac},
        {"invalid account name with a valid MAC", key, popgateIdHeader(key, "bad name", "UID-7")},
        {"empty account with a valid MAC", key, popgateIdHeader(key, "", "UID-7")},
        {"NUL inside", key, replaced("a=helpdesk", std::string("a=help\0desk", 11))},
        {"empty", key, ""},
        {"garbage", key, "hello world"},
        {"prefix only", key, "v1 a="},
        {"field name included", key, "X-Popgate-Id: " + good},
    };
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label << ": '" << row.value << "'")
        {
            PopgateId id{"unchanged", "unchanged"};
            BOOST_TEST(!verifyPopgateId(row.key, row.value, id));
            BOOST_TEST(id.account == "unchanged");
        }
    }
    PopgateId id;
    BOOST_TEST(verifyPopgateId(key, good, id));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(received)

BOOST_AUTO_TEST_CASE(exact_layout)
{
    // 1795888800 = Sat, 28 Nov 2026 18:00:00 UTC; e5d6c1eaac8045a5 = sha256("uidl-1")[:16]
    BOOST_TEST(receivedHeader("pop.example.com", "gateway.example", "helpdesk", "uidl-1",
                              "helpdesk@example.com", 1795888800) ==
               "Received: from pop.example.com by gateway.example (popgate) with POP3\r\n"
               "\tid e5d6c1eaac8045a5 for <helpdesk@example.com> (account helpdesk);\r\n"
               "\tSat, 28 Nov 2026 18:00:00 +0000\r\n");
    BOOST_TEST(receivedHeader("s", "h", "a", "uidl-1", "", 0) ==
               "Received: from s by h (popgate) with POP3 id e5d6c1eaac8045a5 (account a);\r\n"
               "\tThu, 1 Jan 1970 00:00:00 +0000\r\n");
}

BOOST_AUTO_TEST_CASE(well_formed_for_odd_inputs)
{
    struct Row {
        const char* label;
        std::string server, host, account, uidl, recipient;
        std::string mustContain;
        std::string mustNotContain;
    };
    const std::string longHost = std::string(60, 'h') + ".example";
    const std::vector<Row> rows = {
        {"ordinary", "pop.example.com", "gw.example", "helpdesk", "1", "a@b.example",
         "for <a@b.example>", "\r\n\r\n"},
        {"long names force folds", std::string(50, 's') + ".example", longHost, "a", "1",
         std::string(20, 'r') + "@" + std::string(20, 'd') + ".example", "\tby " + longHost,
         "\r\n\r\n"},
        {"header injection in server", "evil\r\nBcc: x@y", "gw", "a", "1", "a@b", "from evil__Bcc_",
         "\nBcc"},
        {"blanks and brackets in host", "pop", "gw (fake) <x>", "a", "1", "a@b", "by gw__fake___x_",
         "(fake)"},
        {"empty server and host", "", "", "a", "1", "a@b", "from unknown by unknown", "from  "},
        {"dots collapse", "..pop..example.", "gw", "a", "1", "a@b", "from pop.example by", ".."},
        {"odd recipient left out", "pop", "gw", "a", "1", "x@y>\r\nBcc: z", "(account a)", "for "},
        {"odd account", "pop", "gw", "a b(c)\r\n", "1", "a@b", "(account a_b_c___)", "a b"},
        {"uidl with every printable char", "pop", "gw", "a", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
         "a@b", " id ", "\\"},
    };
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            const std::string h =
                receivedHeader(row.server, row.host, row.account, row.uidl, row.recipient, 0);
            BOOST_TEST(h.rfind("Received: from ", 0) == 0);
            BOOST_TEST(h.find(row.mustContain) != std::string::npos, "lacks " << row.mustContain);
            BOOST_TEST(h.find(row.mustNotContain) == std::string::npos);
            BOOST_TEST(h.size() >= 2);
            BOOST_TEST(h.substr(h.size() - 2) == "\r\n");
            // Lines: at most 78 characters, continuations
            // start with a tab, only printable ASCII, CR only before LF.
            std::size_t start = 0;
            int lines = 0;
            while (start < h.size()) {
                const std::size_t end = h.find("\r\n", start);
                BOOST_REQUIRE(end != std::string::npos);
                const std::string line = h.substr(start, end - start);
                BOOST_TEST(line.size() <= 78u, "line too long: " << line);
                if (lines > 0)
                    BOOST_TEST(line[0] == '\t');
                for (char c : line)
                    BOOST_TEST((c == '\t' || (c >= 0x20 && c < 0x7f)));
                start = end + 2;
                ++lines;
            }
            BOOST_TEST(h.find(" +0000\r\n") == h.size() - 8);
            BOOST_TEST(h.find(";\r\n\tThu, 1 Jan 1970 00:00:00 +0000\r\n") != std::string::npos);

            // What we write, the rewriter counts as one popgate hop.
            const Result r = rewrite(h + "Subject: s\r\n\r\n", 7, "");
            BOOST_TEST(r.facts.popgateHops == 1);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ---- every From field (issue [H]) -------------------------------------------

BOOST_AUTO_TEST_CASE(every_from_field_is_kept_or_flagged)
{
    struct Row {
        const char* label;
        std::string header; ///< the header section without its blank line
        std::vector<std::string> froms;
        std::string from;
        int fromFields;
        bool tooLarge;
        bool tooMany;
    };
    auto many = [](int n) {
        std::string h;
        for (int i = 0; i < n; ++i)
            h += "From: a" + std::to_string(i) + "@ok.example\r\n";
        return h;
    };
    std::vector<std::string> sixteen;
    for (int i = 0; i < 16; ++i)
        sixteen.push_back("a" + std::to_string(i) + "@ok.example");
    const std::string huge(70000, 'A');
    const std::string big(kMaxFromField, 'B');
    const std::vector<Row> rows = {
        {"one From", "From: a@ok.example\r\n", {"a@ok.example"}, "a@ok.example", 1, false, false},
        {"two From fields, both kept in order",
         "From: a@ok.example\r\nSubject: s\r\nfrom : x@spam.example\r\n",
         {"a@ok.example", "x@spam.example"},
         "a@ok.example",
         2,
         false,
         false},
        {"a folded second From, unfolded",
         "From: a@ok.example\r\nFROM: Spam\r\n <x@spam.example>\r\n",
         {"a@ok.example", "Spam <x@spam.example>"},
         "a@ok.example",
         2,
         false,
         false},
        {"no From", "Subject: s\r\n", {}, "", 0, false, false},
        {"70 000-character From (streamed past kMaxField) is flagged",
         "From: \"" + huge + "\" <x@spam.example>\r\n",
         {},
         "",
         1,
         true,
         false},
        {"70 000-character second From is flagged, the first kept",
         "From: a@ok.example\r\nFrom: \"" + huge + "\" <x@spam.example>\r\n",
         {"a@ok.example"},
         "a@ok.example",
         2,
         true,
         false},
        {"a From folded to 70 000 octets is flagged",
         "From: x@spam.example\r\n" +
             [&] {
                 std::string f;
                 for (int i = 0; i < 700; ++i)
                     f += " (" + std::string(96, 'c') + ")\r\n";
                 return f;
             }(),
         {},
         "",
         1,
         true,
         false},
        {"From at kMaxField-ish 20 000 octets (buffered) is flagged",
         "From: \"" + std::string(20000, 'A') + "\" <x@spam.example>\r\n",
         {},
         "",
         1,
         true,
         false},
        {"From of exactly kMaxFromField octets is kept",
         "From: " + big + "\r\n",
         {big},
         big,
         1,
         false,
         false},
        {"From of kMaxFromField + 1 octets is flagged",
         "From: " + big + "B\r\n",
         {},
         "",
         1,
         true,
         false},
        {"16 From fields are kept", many(16), sixteen, "a0@ok.example", 16, false, false},
        {"17 From fields are too many", many(17), sixteen, "a0@ok.example", 17, false, true},
        {"8-bit display name kept as written",
         "From: J\xfcrgen <a@ok.example>\r\n",
         {"J\xfcrgen <a@ok.example>"},
         "J\xfcrgen <a@ok.example>",
         1,
         false,
         false},
    };
    for (const Row& row : rows)
        for (std::size_t chunk : kChunks) {
            BOOST_TEST_CONTEXT(row.label << ", chunk " << chunk)
            {
                const std::string input = row.header + "\r\nbody\r\n";
                const Result r = rewrite(input, chunk);
                BOOST_TEST((r.output == kPrepend + input), "the message passes byte for byte");
                BOOST_TEST(r.facts.froms == row.froms, boost::test_tools::per_element());
                BOOST_TEST(r.facts.from == row.from);
                BOOST_TEST(r.facts.fromFields == row.fromFields);
                BOOST_TEST(r.facts.fromTooLarge == row.tooLarge);
                BOOST_TEST(r.facts.tooManyFroms == row.tooMany);
                BOOST_TEST(r.facts.headerComplete);
            }
        }
}
