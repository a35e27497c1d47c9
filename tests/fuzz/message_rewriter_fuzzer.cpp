// message_rewriter_fuzzer.cpp - MessageRewriter (core/message.h), the header
// rewriter every fetched message passes, on any bytes. The first two bytes
// seed how the message is cut into writes (single characters through
// overflow(), short and long chunks); the rest is the message. Invariants:
// - the output and the facts do not depend on how the input was cut;
// - the output is the prepend, then the input with whole lines left out, and
//   each line left out belongs to an X-Popgate-* field (its first line or a
//   continuation); without "x-popgate-" in the input nothing is left out;
// - the octet counts are exact; no From field is skipped silently: a From
//   field that is not kept sets fromTooLarge or tooManyFroms (the screen then
//   fails closed); kept fields respect kMaxFromFields and kMaxFromField.
#include "core/message.h"
#include "tests/fuzz/fuzz_support.h"

#include <cstdint>
#include <sstream>

using namespace popgate;
using popgate::fuzz::lowerAscii;
using popgate::fuzz::shown;

namespace
{

const std::string kPrepend = "Received: from fuzz by fuzz (popgate); x\r\nX-Popgate-Id: v1\r\n";

struct Run {
    std::string output;
    MessageFacts facts;
};

// cut - the message written in pieces chosen by a small PRNG from seed; seed 0: one write.
Run cut(const std::string& message, unsigned seed)
{
    std::ostringstream sink;
    MessageRewriter rewriter(sink, kPrepend);
    if (seed == 0) {
        rewriter.sputn(message.data(), static_cast<std::streamsize>(message.size()));
    } else {
        std::uint32_t state = seed * 2654435761u + 1;
        std::size_t at = 0;
        while (at < message.size()) {
            state = state * 1103515245u + 12345u;
            const unsigned pick = (state >> 16) % 8;
            if (pick == 0) {
                rewriter.sputc(message[at]);
                ++at;
                continue;
            }
            const std::size_t sizes[] = {1, 1, 2, 3, 7, 64, 4096, 70000};
            const std::size_t n = std::min(sizes[pick], message.size() - at);
            rewriter.sputn(message.data() + at, static_cast<std::streamsize>(n));
            at += n;
        }
    }
    Run run;
    run.facts = rewriter.finish();
    run.output = sink.str();
    return run;
}

std::vector<std::string> linesOf(const std::string& text)
{
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t lf = text.find('\n', start);
        std::size_t end = lf == std::string::npos ? text.size() : lf + 1;
        lines.push_back(text.substr(start, end - start));
        start = end;
    }
    return lines;
}

bool popgateFieldLine(const std::string& line)
{
    return lowerAscii(line.substr(0, 10)) == "x-popgate-";
}

std::string factsText(const MessageFacts& f)
{
    std::string out = "from=" + shown(f.from) + " froms=" + std::to_string(f.froms.size()) +
                      " fromFields=" + std::to_string(f.fromFields) +
                      " tooLarge=" + std::to_string(f.fromTooLarge) +
                      " tooMany=" + std::to_string(f.tooManyFroms) + " id=" + shown(f.messageId) +
                      " rp=" + shown(f.returnPath) + " subj=" + shown(f.subject) +
                      " hops=" + std::to_string(f.popgateHops) +
                      " popgate=" + std::to_string(f.hadPopgateHeaders) +
                      " complete=" + std::to_string(f.headerComplete) +
                      " in=" + std::to_string(f.inputOctets) +
                      " out=" + std::to_string(f.outputOctets);
    for (const std::string& from : f.froms)
        out += " [" + shown(from) + "]";
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 2)
        return 0;
    const unsigned seed = static_cast<unsigned>(data[0]) | (static_cast<unsigned>(data[1]) << 8);
    const std::string message(reinterpret_cast<const char*>(data) + 2, size - 2);

    const Run whole = cut(message, 0);
    const Run pieces = cut(message, seed == 0 ? 1 : seed);
    const std::string where = "message " + shown(message) + " seed " + std::to_string(seed);
    FUZZ_CHECK(whole.output == pieces.output, where + ": output " + shown(whole.output) +
                                                  " vs in pieces " + shown(pieces.output));
    FUZZ_CHECK(factsText(whole.facts) == factsText(pieces.facts),
               where + ": " + factsText(whole.facts) + " vs in pieces " + factsText(pieces.facts));

    const MessageFacts& f = whole.facts;
    FUZZ_CHECK(f.inputOctets == static_cast<std::int64_t>(message.size()), where);
    FUZZ_CHECK(f.outputOctets == static_cast<std::int64_t>(whole.output.size()), where);
    FUZZ_CHECK(whole.output.compare(0, kPrepend.size(), kPrepend) == 0, where);

    // No From field skipped silently.
    FUZZ_CHECK(f.froms.size() <= kMaxFromFields, where + " " + factsText(f));
    FUZZ_CHECK(static_cast<std::size_t>(f.fromFields) >= f.froms.size(), where + " " + factsText(f));
    if (static_cast<std::size_t>(f.fromFields) != f.froms.size())
        FUZZ_CHECK(f.fromTooLarge || f.tooManyFroms, where + " " + factsText(f));
    for (const std::string& from : f.froms)
        FUZZ_CHECK(from.size() <= kMaxFromField, where + " " + factsText(f));
    // from is the first field's body; "" when that one was too large to keep.
    if (!f.froms.empty() && !f.fromTooLarge)
        FUZZ_CHECK(f.from == f.froms.front(), where + " " + factsText(f));
    if (!f.from.empty())
        FUZZ_CHECK(!f.froms.empty() && f.from == f.froms.front(), where + " " + factsText(f));
    const std::string lowered = lowerAscii(message);
    if (lowered.find("from") == std::string::npos)
        FUZZ_CHECK(f.fromFields == 0, where + " " + factsText(f));

    // The output is the input with X-Popgate-* lines left out.
    const std::string rest = whole.output.substr(kPrepend.size());
    if (lowered.find("x-popgate-") == std::string::npos) {
        FUZZ_CHECK(rest == message, where + ": output " + shown(rest));
        FUZZ_CHECK(!f.hadPopgateHeaders, where);
        return 0;
    }
    const std::vector<std::string> in = linesOf(message);
    const std::vector<std::string> out = linesOf(rest);
    std::size_t o = 0;
    bool inDropped = false;
    for (const std::string& line : in) {
        if (o < out.size() && out[o] == line) {
            ++o;
            inDropped = false;
            continue;
        }
        const bool continuation = !line.empty() && (line[0] == ' ' || line[0] == '\t');
        FUZZ_CHECK(popgateFieldLine(line) || (inDropped && continuation),
                   where + ": line " + shown(line) + " left out; output " + shown(rest));
        inDropped = true;
    }
    FUZZ_CHECK(o == out.size(), where + ": output has lines the input lacks: " + shown(rest));
    if (rest.size() != message.size())
        FUZZ_CHECK(f.hadPopgateHeaders, where);
    return 0;
}
