// account.h - the email account record (one POP3 mailbox popgate fetches),
// its field table and its validation. Pure data: no I/O, no sockets.
// The field table is the one place that names, parses and prints each field;
// popgatectl options, accounts.d files and `account show` all go through it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace popgate
{

enum class AuthKind { None, Password, OAuth, OAuth2 };
enum class Security { None, StartTls, SslTls };
/// Where a message's recipients come from (core/recipients.h).
enum class RecipientSource { Fixed, Envelope };

/// authName - "none" | "password" | "oauth" | "oauth2".
std::string authName(AuthKind kind);
/// securityName - "none" | "starttls" | "ssl-tls".
std::string securityName(Security security);
/// parseAuth / parseSecurity - throw InputError naming the accepted values.
AuthKind parseAuth(const std::string& text);
Security parseSecurity(const std::string& text);

struct Account {
    std::int64_t id = 0;
    std::string name;
    std::string type = "pop3";
    AuthKind auth = AuthKind::Password;
    std::string server;
    int port = 0; ///< 0: the default for the connection security (995 or 110)
    std::string user;
    std::string sealedSecret; ///< SecretBox ciphertext; plaintext never lives here
    Security security = Security::SslTls;
    std::string filter; ///< system address filter name; empty = inbound default
    bool active = true;
    bool provisioned = false; ///< declared in accounts.d; read-only but for active
    bool debugLogging = false;
    std::string mailbox;    ///< e.g. service-desk@company.com
    std::string deliverTo;  ///< comma-separated local recipients; empty = mailbox
    int pollInterval = 120; ///< seconds
    bool keepOnServer = false;
    std::int64_t maxMessageSize = 0; ///< bytes; 0 = no limit of our own
    std::string tlsCaFile;
    std::string tlsPin; ///< SHA-256 of the server certificate, lowercase hex
    std::string oauthProfile;
    std::string authMechanism = "auto"; ///< auto | user | apop | plain | login
    bool plaintextAuth = false;         ///< allow a password in clear (only with security none)
    std::string tlsMinVersion = "1.2";
    // A domain ("multidrop") mailbox: see core/recipients.h.
    RecipientSource recipientSource = RecipientSource::Fixed; ///< `recipients`
    std::string envelopeHeader;  ///< Delivered-To | X-Original-To | Envelope-To | X-Envelope-To
    int envelopeHeaderSkip = 0;  ///< fields of envelopeHeader to skip from the top
    std::string localDomains;    ///< comma-separated, normalized
    std::string recipientMap;    ///< "ADDRESS=RECIPIENT, ..."
    std::string fallbackRecipient; ///< "" = quarantine ("no envelope recipient")
    std::int64_t createdAt = 0; ///< Unix seconds
    std::int64_t updatedAt = 0;

    bool hasSecret() const { return !sealedSecret.empty(); }
    /// effectivePort - port, or 995 for ssl-tls and 110 otherwise.
    int effectivePort() const;
    /// recipients - deliverTo split at commas, or the mailbox address (what a
    /// fixed account delivers to; an envelope account: core/recipients.h).
    std::vector<std::string> recipients() const;
};

/// One settable field: its name (as on the command line and in accounts.d
/// files), what it means, how to parse it into an Account and print it back.
struct AccountField {
    const char* name;
    const char* meaning;
    std::function<void(Account&, const std::string&)> set; ///< throws InputError
    std::function<std::string(const Account&)> get;
};

/// accountFields - every operator-settable field, in display order.
const std::vector<AccountField>& accountFields();
/// findAccountField - nullptr when no field has that name.
const AccountField* findAccountField(const std::string& name);
/// setAccountField - parse and set; throws InputError "FIELD: reason".
void setAccountField(Account& account, const std::string& field, const std::string& value);

struct FieldProblem {
    std::string field;
    std::string message;
};

struct AccountCheck {
    std::vector<FieldProblem> errors;
    std::vector<std::string> warnings;
    bool ok() const { return errors.empty(); }
};

/// validateAccount - every rule that can be checked without I/O. A sealed
/// secret counts as "set"; the secret's content is not looked at.
AccountCheck validateAccount(const Account& account);
/// requireValid - throws InputError "account 'NAME': FIELD: reason; ..." when invalid.
void requireValid(const Account& account);
/// isValidName - 1-64 characters of [A-Za-z0-9._-].
bool isValidName(const std::string& name);

extern const char* const kInsecureSecurityWarning;

} // namespace popgate
