// sender_forms.h - the generator of the sender property tests (issue [H]
// item 7): From fields that carry one target address in a legal or obsolete
// form of RFC 5322 (folding, RFC 2047 words, comments, quoted local parts,
// case, groups, several From fields, obsolete blanks and routes, a field over
// 1 MB (folded), an IDN domain as U-label or A-label), beside decoys that are always
// allowed. Deterministic for a seed; header-only, shared by the in-process
// suites (tests/core/sender_property_test.cpp, tests/popgated/) and the real
// Postfix sample (tests/popgate-milter/).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace popgate::test
{

/// The target of one generated message.
struct SenderTarget {
    std::string local;   ///< ASCII dot-atom local part
    std::string domain;  ///< as the filter lists it (A-label or ASCII)
    std::string uDomain; ///< the same domain as U-labels ("" when it has none)
};

/// One generated From section.
struct SenderCase {
    std::string form;               ///< the forms used, for the failure message
    std::vector<std::string> froms; ///< From field bodies (may contain folding CR LF)
    bool overLimit = false;         ///< a From field over popgate's 16 KiB limit: never delivered
    /// header - the From fields as header lines, CRLF-terminated.
    std::string header() const
    {
        std::string out;
        for (const std::string& f : froms)
            out += "From: " + f + "\r\n";
        return out;
    }
};

/// SenderForms - draws SenderCases from a seeded generator.
class SenderForms
{
public:
    /// SenderForms - decoy is an address the filter always allows ("a@ok.example").
    SenderForms(std::uint32_t seed, std::string decoy) : rng_(seed), decoy_(std::move(decoy)) {}

    /// next - a From section carrying target; huge: its From field (the
    /// target's) is made over 1 MB by a long quoted display name.
    SenderCase next(const SenderTarget& target, bool huge = false)
    {
        SenderCase c;
        std::string local = target.local, domain = target.domain;
        if (!target.uDomain.empty() && pick(2) == 0) {
            domain = target.uDomain;
            c.form += "u-label ";
        }
        if (pick(3) == 0) {
            local = mixCase(local);
            domain = mixCase(domain);
            c.form += "case ";
        }
        const std::string spec =
            pick(5) == 0 ? quotedLocal(local) + "@" + domain : local + "@" + domain;
        if (spec[0] == '"')
            c.form += "quoted-local ";
        std::string mailbox;
        switch (pick(11)) {
        case 0:
            c.form += "bare";
            mailbox = spec;
            break;
        case 1:
            c.form += "display-name";
            mailbox = "Some Body <" + spec + ">";
            break;
        case 2:
            c.form += "quoted-display-name";
            mailbox = "\"Doe, J. <" + decoy_ + ">\" <" + spec + ">";
            break;
        case 3:
            c.form += "encoded-word";
            mailbox = "=?utf-8?q?" + encodedAt(decoy_) + "?= <" + spec + ">";
            break;
        case 4:
            c.form += "comments";
            mailbox = "(" + decoy_ + ") " + spec + " (and (nested) " + decoy_ + ")";
            break;
        case 5:
            c.form += "8-bit-display-name";
            mailbox = "J\xfcrgen \xc3\xa9\x93 <" + spec + ">";
            break;
        case 6:
            c.form += "obsolete-blanks";
            mailbox = blanksAroundAt(spec);
            break;
        case 7:
            c.form += "source-route";
            mailbox = "<@relay.example,@relay2.example:" + spec + ">";
            break;
        case 8:
            c.form += "group";
            mailbox = "Team: " + decoy_ + ", Ann <" + spec + ">, " + decoy_ + ";";
            break;
        case 9:
            c.form += "list";
            mailbox = decoy_ + ", " + spec;
            break;
        default:
            c.form += "display-name-looks-like-decoy";
            mailbox = decoy_ + " <" + spec + ">";
            break;
        }
        if (pick(3) == 0) {
            mailbox = fold(mailbox);
            c.form += " folded";
        }
        c.froms.push_back(mailbox);
        const int several = pick(4);
        if (several == 1) {
            c.froms.insert(c.froms.begin(), decoy_);
            c.form += " after-another-From";
        } else if (several == 2) {
            c.froms.push_back("Decoy <" + decoy_ + ">");
            c.form += " before-another-From";
        }
        if (huge) {
            const std::size_t mine = several == 2 ? 0 : c.froms.size() - 1;
            // 1100 folded lines of 1 KiB: each line is under the POP3 reader's
            // 1 MiB line cap (a longer line fails the message before the screen).
            std::string name;
            for (int line = 0; line < 1100; ++line)
                name += (line ? "\r\n " : "") + std::string(1023, 'A');
            c.froms[mine] = "\"" + name + "\" <" + spec + ">";
            c.form += " over-1-MB";
            c.overLimit = true;
        }
        return c;
    }

    int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

private:
    std::string mixCase(const std::string& s)
    {
        std::string out = s;
        for (char& ch : out)
            if (ch >= 'a' && ch <= 'z' && pick(2) == 0)
                ch = static_cast<char>(ch - 'a' + 'A');
        return out;
    }
    static std::string quotedLocal(const std::string& local) { return "\"" + local + "\""; }
    static std::string encodedAt(const std::string& address)
    {
        std::string out;
        for (char c : address)
            out += c == '@' ? std::string("=40") : std::string(1, c);
        return out;
    }
    std::string blanksAroundAt(const std::string& spec)
    {
        const std::size_t at = spec.rfind('@');
        return spec.substr(0, at) + (pick(2) ? " @ " : " @") + spec.substr(at + 1);
    }
    /// fold - CR LF before some of the blanks (RFC 5322 folding keeps the WSP).
    std::string fold(const std::string& s)
    {
        std::string out;
        for (char c : s) {
            if ((c == ' ') && pick(2) == 0)
                out += "\r\n";
            out += c;
        }
        if (out.find("\r\n") == std::string::npos)
            out = "\r\n " + out; // nothing to fold at: fold before the first word
        return out;
    }

    std::mt19937 rng_;
    std::string decoy_;
};

} // namespace popgate::test
